"""`hpo data import-structures`: one image plus one mask file per structure, to a multi-label Decathlon dataset.

Each case's masks are matched to structures through a `LabelTable`, checked to lie on the image's
grid (see `place_on_grid`), and merged into one label map.

Overlap rule: a voxel claimed by several masks goes to the structure with the fewest voxels in
that case (`smallest`, the default), so that a small structure such as an optic nerve is not
swallowed by a generously drawn neighbour. `table` gives it to the structure with the lowest
label value instead, and `error` reports every overlap as a problem.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path

import nibabel as nib
import numpy as np

from hpo.data.importers.decathlon_writer import (
    DecathlonDataset,
    check_output_folder,
    compile_group_pattern,
    group_key,
    safe_case_id,
)
from hpo.data.importers.label_table import LabelTable
from hpo.data.importers.volumes import Volume, VolumeError, is_volume_file, place_on_grid, read_volume, volume_stem
from hpo.errors import DatasetError

logger = logging.getLogger(__name__)

OVERLAP_RULES = ("smallest", "table", "error")


@dataclass(frozen=True)
class StructureImportSettings:
    """Label map settings: the overlap rule, an optional crop around the structures, and output options."""

    overlap: str = "smallest"
    crop_margin: float | None = None  # millimetres around the labelled voxels; None keeps the whole image
    require_all: bool = False
    group_pattern: str | None = None
    modality: str = "CT"
    overwrite: bool = False


@dataclass(frozen=True)
class CaseSource:
    case_id: str
    image: Path
    masks_dir: Path


@dataclass
class StructureImportReport:
    """Summary of an import: the cases written, the labels found, and the structures missing per case."""

    dataset: Path
    cases: list[str] = field(default_factory=list)
    labels: dict[int, str] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)


def find_cases(image: str, masks: str, case_id: str | None = None) -> list[CaseSource]:
    """List the cases named by `image` and `masks`: single paths, or patterns in which `{case}` marks the case identifier."""
    if "{case}" not in image:
        if "{case}" in masks:
            raise DatasetError("--masks contains {case} but --image does not; put {case} in both, or in neither for one case")
        identifier = case_id or safe_case_id(volume_stem(Path(image)))
        return [CaseSource(identifier, Path(image), Path(masks))]

    found = []
    matcher = _case_matcher(image)
    for path in sorted(glob(image.replace("{case}", "*"))):
        match = matcher.fullmatch(Path(path).as_posix())
        if match:
            found.append(CaseSource(match["case"], Path(path), Path(masks.replace("{case}", match["case"]))))
    if not found:
        raise DatasetError(f"--image {image}: no file matches this pattern; check the path and the position of {{case}}")
    return found


def _case_matcher(pattern: str) -> re.Pattern:
    parts = Path(pattern).as_posix().split("{case}")
    regex = re.escape(parts[0]) + "(?P<case>[^/]+)"
    for part in parts[1:-1]:
        regex += re.escape(part) + "(?P=case)"
    return re.compile(regex + re.escape(parts[-1]))


def import_structures(
    cases: list[CaseSource], table: LabelTable, out_dir: str | Path, settings: StructureImportSettings
) -> StructureImportReport:
    """Build every case's label map; report every problem of every case at once, writing nothing then."""
    if settings.overlap not in OVERLAP_RULES:
        raise DatasetError(f"--overlap must be one of {', '.join(OVERLAP_RULES)} but got '{settings.overlap}'")
    out_dir = Path(out_dir)
    check_output_folder(out_dir, settings.overwrite)

    built, problems = [], []
    groups = _groups(cases, settings.group_pattern, problems)
    for source in cases:
        result = build_label_map(source, table, settings)
        if isinstance(result, list):
            problems.extend(result)
        else:
            built.append(result)
    if problems:
        raise DatasetError(f"{len(problems)} problems in {len(cases)} cases, nothing imported:", problems)

    return _write(built, groups, table, out_dir, settings)


def _groups(cases: list[CaseSource], pattern: str | None, problems: list[str]) -> dict[str, str]:
    compiled = compile_group_pattern(pattern)
    if compiled is None:
        return {}
    groups = {}
    for source in cases:
        key = group_key(compiled, source.case_id)
        if key is None:
            problems.append(f"case {source.case_id}: identifier does not match --group-pattern {pattern!r}")
        else:
            groups[source.case_id] = key
    return groups


@dataclass(frozen=True)
class BuiltCase:
    source: CaseSource
    image: Volume
    label: np.ndarray
    missing: list[str]


def build_label_map(source: CaseSource, table: LabelTable, settings: StructureImportSettings) -> BuiltCase | list[str]:
    """Read one case and merge its masks; return the case, or a list of its problems."""
    try:
        image = read_volume(source.image)
    except VolumeError as error:
        return [str(error)]
    files, problems = _mask_files(source, table)
    masks: dict[str, np.ndarray] = {}
    for name, path in files.items():
        try:
            masks[name] = place_on_grid(read_volume(path), image)
        except VolumeError as error:
            problems.append(str(error))
    problems.extend(f"{files[name]}: mask is empty" for name, mask in masks.items() if not mask.any())
    missing = [name for name in table.values if name not in files]
    if missing and settings.require_all:
        problems.append(f"{source.masks_dir}: no mask file for {missing} (case {source.case_id}); --require-all is set")
    if problems:
        return problems

    label, overlap_problems = merge_masks(masks, table, settings.overlap, source.case_id)
    if overlap_problems:
        return overlap_problems
    return BuiltCase(source, image, label, missing)


def _mask_files(source: CaseSource, table: LabelTable) -> tuple[dict[str, Path], list[str]]:
    if not source.masks_dir.is_dir():
        return {}, [f"{source.masks_dir}: masks folder not found (case {source.case_id})"]
    files: dict[str, Path] = {}
    problems = []
    for path in sorted(p for p in source.masks_dir.iterdir() if is_volume_file(p) and p != source.image):
        name = table.structure_for(volume_stem(path), source.case_id)
        if name is None:
            continue
        if name in files:
            problems.append(f"{path}: a second mask for {name} beside {files[name].name}; keep one file per structure")
            continue
        files[name] = path
    return files, problems


def merge_masks(masks: dict[str, np.ndarray], table: LabelTable, rule: str, case_id: str) -> tuple[np.ndarray, list[str]]:
    """Merge boolean masks into one label map by the overlap rule; with `error`, return the overlaps as problems."""
    # Structures are drawn in order, so the last one drawn on a voxel keeps it.
    if rule == "smallest":
        order = sorted(masks, key=lambda name: int(masks[name].sum()), reverse=True)
    else:
        order = sorted(masks, key=lambda name: table.values[name], reverse=True)
    shape = next(iter(masks.values())).shape if masks else ()
    label = np.zeros(shape, dtype=np.uint8)
    owner: dict[int, str] = {}
    problems = []
    for name in order:
        value = table.values[name]
        claimed = masks[name] & (label > 0)
        for other in np.unique(label[claimed]):
            count = int(np.count_nonzero(label[claimed] == other))
            line = f"case {case_id}: {name} and {owner[int(other)]} overlap in {count} voxels"
            if rule == "error":
                problems.append(line + "; --overlap error is set")
            else:
                logger.info("%s; the voxels go to %s (--overlap %s)", line, name, rule)
        label[masks[name]] = value
        owner[value] = name
    return label, problems


def _write(
    built: list[BuiltCase], groups: dict[str, str], table: LabelTable, out_dir: Path, settings: StructureImportSettings
) -> StructureImportReport:
    labels = _declared_labels(built, table)

    dataset = DecathlonDataset(out_dir, out_dir.name, labels, settings.modality, "Imported by hpo data import-structures")
    report = StructureImportReport(out_dir / "dataset.json", labels=labels)
    for case in built:
        image, label = _crop(case, settings.crop_margin)
        # Without --group-pattern each case is its own group, so that data.group_by works either way.
        group = groups.get(case.source.case_id, case.source.case_id)
        metadata = {"case": case.source.case_id, "source": str(case.source.image), "group": group}
        dataset.add_training_case(safe_case_id(case.source.case_id), image, label, metadata)
        report.cases.append(case.source.case_id)
        if case.missing:
            report.missing[case.source.case_id] = case.missing
            logger.debug("Case %s has no mask for %s", case.source.case_id, case.missing)
    dataset.save()
    return report


def _declared_labels(built: list[BuiltCase], table: LabelTable) -> dict[int, str]:
    """Declare the table's structures up to the highest label value that some case contains.

    A structure that no case has is left out when it comes last. Before a present structure it
    stays declared, because the network has one output channel per value up to the highest, and
    per-structure scores are matched to names by channel.
    """
    present = {int(value) for case in built for value in np.unique(case.label) if value}
    highest = max(present, default=0)
    labels = {0: "background", **{value: name for value, name in table.names_by_value().items() if value <= highest}}
    left_out = [name for value, name in table.names_by_value().items() if value > highest]
    if left_out:
        logger.warning("No case has a mask for %s; they are left out of dataset.json labels", left_out)
    kept_empty = [name for value, name in labels.items() if value and value not in present]
    if kept_empty:
        logger.warning(
            "No case has a mask for %s, but they stay in dataset.json because higher label values follow; "
            "their Dice will read 1.0 (absent from prediction and reference). Renumber the label table to drop them.",
            kept_empty,
        )
    return labels


def _crop(case: BuiltCase, margin: float | None) -> tuple[nib.Nifti1Image, nib.Nifti1Image]:
    """Cut image and label to the labelled voxels' bounding box plus `margin` millimetres, when a margin is set."""
    data, label, affine = case.image.data, case.label, case.image.affine.copy()
    if margin is not None and label.any():
        indices = np.argwhere(label > 0)
        pad = np.ceil(margin / case.image.spacing).astype(int)
        low = np.maximum(indices.min(axis=0) - pad, 0)
        high = np.minimum(indices.max(axis=0) + pad + 1, label.shape)
        box = tuple(slice(int(a), int(b)) for a, b in zip(low, high))
        data, label = data[box], label[box]
        affine[:3, 3] = affine[:3, :3] @ low + affine[:3, 3]
    image = nib.Nifti1Image(np.ascontiguousarray(data), affine)
    label_image = nib.Nifti1Image(np.ascontiguousarray(label), affine)
    for item in (image, label_image):
        item.header.set_xyzt_units("mm")
    return image, label_image
