"""Dataset layouts: the Medical Segmentation Decathlon and nnU-Net v2 folders, read into `DatasetInfo`.

Decathlon: `dataset.json` lists `training` pairs of `image` and `label` paths and maps label
values (as strings) to names in `labels`. A multi-channel image is one 4D file.
nnU-Net v2: `dataset.json` has `channel_names`, `labels` (name to value) and `file_ending`;
channel `k` of case `c` is `imagesTr/c_000k<file_ending>` and its label `labelsTr/c<file_ending>`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpo.errors import DatasetError

NNUNET_CHANNEL = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


@dataclass(frozen=True)
class Case:
    """One training case: its identifier, its image files (one per channel, or one 4D file) and its label."""

    case_id: str
    images: tuple[Path, ...]
    label: Path
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset folder as declared by its `dataset.json`."""

    root: Path
    layout: str
    labels: dict[int, str]
    channel_names: tuple[str, ...]
    cases: tuple[Case, ...]

    @property
    def structure_names(self) -> dict[int, str]:
        """The foreground labels: every declared label but background (0)."""
        return {value: name for value, name in self.labels.items() if value != 0}


def read_dataset(root: str | Path, layout: str = "auto") -> DatasetInfo:
    """Read a dataset folder in the Decathlon or nnU-Net v2 layout (`auto` detects which)."""
    root = Path(root)
    manifest = root / "dataset.json"
    if not manifest.is_file():
        msg = (
            f"{manifest} not found: a dataset folder needs a dataset.json (Decathlon or nnU-Net v2 layout). "
            "Check data.path in the study config, or run 'hpo data download' to fetch a Decathlon task."
        )
        raise DatasetError(msg)
    try:
        description = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError) as error:
        msg = f"{manifest} is not readable JSON: {error}"
        raise DatasetError(msg) from error

    if layout == "auto":
        layout = "nnunetv2" if "channel_names" in description or "file_ending" in description else "decathlon"
    if layout == "nnunetv2":
        return _read_nnunet(root, description)
    return _read_decathlon(root, description)


def _read_decathlon(root: Path, description: dict[str, Any]) -> DatasetInfo:
    manifest = root / "dataset.json"
    entries = description.get("training")
    if not isinstance(entries, list) or not entries:
        msg = f"{manifest}: 'training' must be a non-empty list of {{\"image\": ..., \"label\": ...}} entries."
        raise DatasetError(msg)
    labels = _parse_labels(description.get("labels"), manifest, names_are_keys=False)
    modality = description.get("modality") or {"0": "image"}
    channel_names = tuple(str(modality[key]) for key in sorted(modality, key=int))

    cases = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or "image" not in entry or "label" not in entry:
            msg = f"{manifest}: training entry {index} needs 'image' and 'label' keys but got {entry!r}."
            raise DatasetError(msg)
        image = (root / entry["image"]).resolve()
        case_id = image.name.split(".")[0]
        extra = {key: value for key, value in entry.items() if key not in ("image", "label")}
        cases.append(Case(case_id, (image,), (root / entry["label"]).resolve(), extra))
    return DatasetInfo(root, "decathlon", labels, channel_names, tuple(cases))


def _read_nnunet(root: Path, description: dict[str, Any]) -> DatasetInfo:
    manifest = root / "dataset.json"
    for key in ("channel_names", "labels", "file_ending"):
        if key not in description:
            msg = f"{manifest}: nnU-Net v2 layout needs the key '{key}'."
            raise DatasetError(msg)
    ending = description["file_ending"]
    channels = description["channel_names"]
    channel_names = tuple(str(channels[key]) for key in sorted(channels, key=int))
    labels = _parse_labels(description["labels"], manifest, names_are_keys=True)

    image_dir = root / "imagesTr"
    by_case: dict[str, dict[int, Path]] = {}
    for path in sorted(image_dir.glob(f"*{ending}")):
        match = NNUNET_CHANNEL.match(path.name[: -len(ending)])
        if match:
            by_case.setdefault(match["case"], {})[int(match["channel"])] = path.resolve()
    if not by_case:
        msg = f"{image_dir}: no image files named CASE_0000{ending} found."
        raise DatasetError(msg)

    problems = []
    cases = []
    for case_id, files in sorted(by_case.items()):
        missing = [k for k in range(len(channel_names)) if k not in files]
        if missing:
            problems.append(f"{image_dir / case_id}: channels {missing} missing (expected {case_id}_000k{ending})")
            continue
        images = tuple(files[k] for k in range(len(channel_names)))
        cases.append(Case(case_id, images, (root / "labelsTr" / f"{case_id}{ending}").resolve()))
    if problems:
        raise DatasetError(f"{root}: {len(problems)} cases are incomplete:", problems)
    return DatasetInfo(root, "nnunetv2", labels, channel_names, tuple(cases))


def _parse_labels(raw: Any, manifest: Path, names_are_keys: bool) -> dict[int, str]:
    if not isinstance(raw, dict) or not raw:
        msg = f"{manifest}: 'labels' must be a non-empty mapping of label values and names."
        raise DatasetError(msg)
    pairs = [(value, name) for name, value in raw.items()] if names_are_keys else list(raw.items())
    try:
        labels = {int(value): str(name) for value, name in pairs}
    except (TypeError, ValueError) as error:
        msg = f"{manifest}: label values must be whole numbers but got {raw!r}."
        raise DatasetError(msg) from error
    if 0 not in labels:
        labels[0] = "background"
    return dict(sorted(labels.items()))
