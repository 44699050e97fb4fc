"""Writing imported cases as a Medical Segmentation Decathlon dataset: NIfTI files and `dataset.json`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib

from hpo.errors import DatasetError

UNSAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9_-]+")


def safe_case_id(text: str) -> str:
    """Turn text into a case identifier usable as a file name: path separators, dots and spaces become `_`."""
    return UNSAFE_CHARACTERS.sub("_", text).strip("_") or "case"


@dataclass
class DecathlonDataset:
    """A Decathlon dataset being written: cases are added one by one, then `dataset.json` is saved."""

    root: Path
    name: str
    labels: dict[int, str]
    modality: str = "image"
    description: str = ""
    training: list[dict[str, Any]] = field(default_factory=list)
    test: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        for folder in ("imagesTr", "labelsTr", "imagesTs"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)

    def add_training_case(
        self, case_id: str, image: nib.Nifti1Image, label: nib.Nifti1Image, metadata: dict[str, Any] | None = None
    ) -> None:
        """Write one image and its label map, and list them as a training entry with `metadata` beside them."""
        file_name = f"{case_id}.nii.gz"
        nib.save(image, self.root / "imagesTr" / file_name)
        nib.save(label, self.root / "labelsTr" / file_name)
        entry = {"image": f"./imagesTr/{file_name}", "label": f"./labelsTr/{file_name}"}
        self.training.append({**entry, **(metadata or {})})

    def add_test_image(self, case_id: str, image: nib.Nifti1Image) -> None:
        """Write one unlabelled image into `imagesTs/`."""
        file_name = f"{case_id}.nii.gz"
        nib.save(image, self.root / "imagesTs" / file_name)
        self.test.append(f"./imagesTs/{file_name}")

    def save(self) -> Path:
        """Write `dataset.json` and return its path."""
        manifest = {
            "name": self.name,
            "description": self.description,
            "tensorImageSize": "3D",
            "modality": {"0": self.modality},
            "labels": {str(value): name for value, name in sorted(self.labels.items())},
            "numTraining": len(self.training),
            "numTest": len(self.test),
            "training": self.training,
            "test": self.test,
        }
        path = self.root / "dataset.json"
        path.write_text(json.dumps(manifest, indent=2) + "\n")
        return path


def check_output_folder(root: Path, overwrite: bool) -> None:
    """Reject a folder that already contains a dataset unless `overwrite` is set, and then delete its NIfTI files."""
    manifest = Path(root) / "dataset.json"
    if manifest.exists() and not overwrite:
        msg = f"{manifest} already exists; choose another --out folder or pass --overwrite to replace that dataset."
        raise DatasetError(msg)
    if overwrite:
        for folder in ("imagesTr", "labelsTr", "imagesTs"):
            for old in (Path(root) / folder).glob("*.nii.gz"):
                old.unlink()


def compile_group_pattern(pattern: str | None) -> re.Pattern | None:
    """Compile `--group-pattern`, a regular expression whose group named `group` (or first group, or whole match) is the group key."""
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as error:
        msg = f"--group-pattern {pattern!r} is not a valid regular expression: {error}"
        raise DatasetError(msg) from error


def group_key(pattern: re.Pattern, text: str) -> str | None:
    """Return the group key that `pattern` finds in `text`, or None when it does not match."""
    match = pattern.search(text)
    if match is None:
        return None
    if "group" in pattern.groupindex:
        return match["group"]
    return match.group(1) if pattern.groups else match.group(0)
