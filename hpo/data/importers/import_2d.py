"""`hpo data import-2d`: 2D image and mask pictures to a Decathlon dataset of single-slice NIfTI volumes.

Images and masks are paired by their path relative to the images and masks folders, without the
suffix, so `images/train/0001.jpg` pairs with `masks/train/0001.png`. The first subfolder of a pair
(such as `train` or `val`) is recorded as the `split` key of its `dataset.json` entry, which
`data.recorded_split` can use. A regular expression on the relative path can record a `group`
key (a video, a patient) for `data.group_by`.

Every problem (an image without mask, a mask without image, an empty mask, a size mismatch, an
unreadable file) is collected before anything is reported, so one run lists them all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
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
from hpo.data.importers.pictures import (
    LOSSY_SUFFIXES,
    PICTURE_SUFFIXES,
    PictureError,
    downsample,
    frame_affine,
    frame_to_volume,
    is_picture,
    read_grey,
)
from hpo.errors import DatasetError

logger = logging.getLogger(__name__)

PROGRESS_EVERY = 500


@dataclass(frozen=True)
class PictureImportSettings:
    """Conversion settings: mask threshold, structure name, pixel spacing (mm), downsampling and output options."""

    threshold: float = 128.0
    structure: str = "foreground"
    spacing: tuple[float, float] = (1.0, 1.0)
    downsample: int = 1
    mask_suffix: str = ""
    group_pattern: str | None = None
    modality: str = "image"
    allow_empty: bool = False
    skip_problems: bool = False
    overwrite: bool = False


@dataclass(frozen=True)
class PicturePair:
    key: str  # relative path without suffix, such as "train/0001"
    image: Path
    mask: Path | None


@dataclass
class ImportReport:
    """Summary of an import: frames written per split, unlabelled frames, and skipped problems."""

    dataset: Path
    imported: int = 0
    unlabelled: int = 0
    skipped: list[str] = field(default_factory=list)
    splits: dict[str, int] = field(default_factory=dict)


def import_pictures(
    images_dir: str | Path, masks_dir: str | Path | None, out_dir: str | Path, settings: PictureImportSettings
) -> ImportReport:
    """Convert every image (and its mask, when `masks_dir` is given) in the folders into a Decathlon dataset.

    Without `masks_dir`, images are written to `imagesTs/` as unlabelled frames for prediction.
    """
    images_dir, out_dir = Path(images_dir), Path(out_dir)
    _check_settings(settings)
    pairs, problems = pair_pictures(images_dir, Path(masks_dir) if masks_dir else None, settings.mask_suffix)
    groups, group_problems = _groups(pairs, settings.group_pattern)
    problems.extend(group_problems)
    pairs = _drop_case_id_clashes(pairs, problems)
    if not pairs and not problems:
        msg = f"{images_dir}: no pictures found (looked for {', '.join(PICTURE_SUFFIXES)} files in it and its subfolders)."
        raise DatasetError(msg)
    check_output_folder(out_dir, settings.overwrite)

    dataset = DecathlonDataset(
        out_dir, out_dir.name, {0: "background", 1: settings.structure}, settings.modality,
        description=f"Imported by hpo data import-2d from {images_dir}",
    )
    report = ImportReport(out_dir / "dataset.json")
    for index, pair in enumerate(pairs, start=1):
        problem = _import_pair(pair, settings, dataset, groups.get(pair.key), report)
        if problem:
            problems.append(problem)
        if index % PROGRESS_EVERY == 0:
            logger.info("Imported %d of %d pictures", index, len(pairs))

    _finish(problems, dataset, report, settings, images_dir)
    return report


def _check_settings(settings: PictureImportSettings) -> None:
    if settings.downsample < 1:
        msg = f"--downsample must be a whole number of at least 1 but got {settings.downsample}."
        raise DatasetError(msg)
    if any(value <= 0 for value in settings.spacing):
        msg = f"--spacing values must be positive millimetres but got {settings.spacing}."
        raise DatasetError(msg)


def pair_pictures(images_dir: Path, masks_dir: Path | None, mask_suffix: str = "") -> tuple[list[PicturePair], list[str]]:
    """Pair images with masks by relative path; return the pairs and a problem line for each orphan file."""
    problems: list[str] = []
    images = _index_pictures(images_dir, "", problems)
    if masks_dir is None:
        return [PicturePair(key, path, None) for key, path in sorted(images.items())], problems

    masks = _index_pictures(masks_dir, mask_suffix, problems)
    for key in sorted(set(images) - set(masks)):
        problems.append(f"{images[key]}: no mask found (expected {masks_dir / key}{mask_suffix}.<png|jpg|...>)")
    for key in sorted(set(masks) - set(images)):
        problems.append(f"{masks[key]}: mask without an image (expected {images_dir / key}.<png|jpg|...>)")
    pairs = [PicturePair(key, images[key], masks[key]) for key in sorted(set(images) & set(masks))]
    return pairs, problems


def _drop_case_id_clashes(pairs: list[PicturePair], problems: list[str]) -> list[PicturePair]:
    """Drop and report pairs whose case identifiers coincide once made safe for file names (`a/b.png`, `a_b.png`)."""
    seen: dict[str, PicturePair] = {}
    for pair in pairs:
        case_id = safe_case_id(pair.key)
        if case_id in seen:
            problems.append(f"{pair.image}: its case identifier '{case_id}' is the same as that of {seen[case_id].image}; rename one")
            continue
        seen[case_id] = pair
    return list(seen.values())


def _index_pictures(folder: Path, suffix: str, problems: list[str]) -> dict[str, Path]:
    if not folder.is_dir():
        msg = f"{folder}: folder not found; check the --images and --masks paths."
        raise DatasetError(msg)

    found: dict[str, Path] = {}
    for path in sorted(p for p in folder.rglob("*") if is_picture(p)):
        key = path.relative_to(folder).with_suffix("").as_posix()
        if suffix and not key.endswith(suffix):
            problems.append(f"{path}: mask name does not end with the mask suffix '{suffix}'")
            continue
        key = key.removesuffix(suffix) if suffix else key
        if key in found:
            problems.append(f"{path}: same name as {found[key].name}; keep one picture per name")
            continue
        found[key] = path
    return found


def _groups(pairs: list[PicturePair], pattern: str | None) -> tuple[dict[str, str], list[str]]:
    compiled = compile_group_pattern(pattern)
    if compiled is None:
        return {}, []

    groups, problems = {}, []
    for pair in pairs:
        key = group_key(compiled, pair.key)
        if key is None:
            problems.append(f"{pair.image}: relative path '{pair.key}' does not match --group-pattern {pattern!r}")
            continue
        groups[pair.key] = key
    return groups, problems


def _import_pair(
    pair: PicturePair, settings: PictureImportSettings, dataset: DecathlonDataset, group: str | None, report: ImportReport
) -> str | None:
    """Convert and write one pair; return a problem line instead when it cannot be imported."""
    try:
        image = read_grey(pair.image)
        mask = read_grey(pair.mask) if pair.mask else None
    except PictureError as error:
        return str(error)

    case_id = safe_case_id(pair.key)
    affine = frame_affine((settings.spacing[0] * settings.downsample, settings.spacing[1] * settings.downsample))
    image_volume = nib.Nifti1Image(frame_to_volume(_image_values(image, settings.downsample)), affine)
    image_volume.header.set_xyzt_units("mm")
    if mask is None:
        dataset.add_test_image(case_id, image_volume)
        report.unlabelled += 1
        return None

    problem = _mask_problem(pair, image, mask, settings)
    if problem:
        return problem
    binary = downsample((mask >= settings.threshold).astype(np.float32), settings.downsample) >= 0.5
    label_volume = nib.Nifti1Image(frame_to_volume(binary.astype(np.uint8)), affine)
    label_volume.header.set_xyzt_units("mm")
    dataset.add_training_case(case_id, image_volume, label_volume, _metadata(pair, group))
    report.imported += 1
    return None


def _image_values(image: np.ndarray, factor: int) -> np.ndarray:
    values = downsample(image, factor)
    if image.dtype == np.uint8:
        return np.rint(values).astype(np.uint8)
    return values.astype(np.float32)


def _mask_problem(pair: PicturePair, image: np.ndarray, mask: np.ndarray, settings: PictureImportSettings) -> str | None:
    if image.shape != mask.shape:
        return f"{pair.mask}: size {mask.shape[1]} x {mask.shape[0]} differs from image {pair.image.name} size {image.shape[1]} x {image.shape[0]}"
    if settings.allow_empty or np.any(mask >= settings.threshold):
        return None
    hint = ""
    if 0 < mask.max() < settings.threshold:
        hint = f" (its maximum is {mask.max()}: for masks stored as 0 and {mask.max()}, pass --threshold {mask.max() / 2:g})"
    elif pair.mask.suffix.lower() in LOSSY_SUFFIXES:
        hint = " (a lossy JPEG mask: check --threshold)"
    return f"{pair.mask}: empty mask, no pixel reaches --threshold {settings.threshold:g}{hint}; pass --allow-empty to keep such frames"


def _metadata(pair: PicturePair, group: str | None) -> dict[str, str]:
    metadata = {"source": pair.key + pair.image.suffix}
    parts = pair.key.split("/")
    if len(parts) > 1:
        metadata["split"] = parts[0]
    if group is not None:
        metadata["group"] = group
    return metadata


def _finish(
    problems: list[str], dataset: DecathlonDataset, report: ImportReport, settings: PictureImportSettings, images_dir: Path
) -> None:
    if problems and not settings.skip_problems:
        _remove_written(dataset)
        msg = f"{images_dir}: {len(problems)} problems found, nothing imported; fix them or pass --skip-problems to import the rest:"
        raise DatasetError(msg, problems)
    report.skipped = problems
    for problem in problems:
        logger.warning("Skipped: %s", problem)
    if not dataset.training and not dataset.test:
        raise DatasetError(f"{images_dir}: every pair had a problem; nothing to import.", problems)

    for entry in dataset.training:
        split = entry.get("split", "(none)")
        report.splits[split] = report.splits.get(split, 0) + 1
    dataset.save()


def _remove_written(dataset: DecathlonDataset) -> None:
    for entry in dataset.training:
        (dataset.root / entry["image"]).unlink(missing_ok=True)
        (dataset.root / entry["label"]).unlink(missing_ok=True)
    for path in dataset.test:
        (dataset.root / path).unlink(missing_ok=True)
