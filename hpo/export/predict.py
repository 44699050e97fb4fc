"""Segmentation of new NIfTI files with an exported model.

Each input goes through the trial's own preprocessing (`load_image`: reorientation, percentile
clipping, normalisation), sliding-window inference with the trial's patch size and overlap, and
back to the file's own axis order, and is written with the input's affine. A prediction therefore
has the input's spatial shape and overlays it in any viewer.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from hpo.data.preprocessing import load_image, restore_orientation
from hpo.export.bundle import BundleError, LoadedModel
from hpo.files import atomic_path
from hpo.training.inference import predict_label_map

logger = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii.gz", ".nii")
# nnU-Net names channel k of case c as c_000k.nii.gz.
CHANNEL_SUFFIX = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


@dataclass(frozen=True)
class PredictionJob:
    """One case to segment: its channel files in order and the label map to write."""

    case_id: str
    inputs: tuple[Path, ...]
    output: Path


def nifti_stem(path: Path) -> str | None:
    """Return the file name without its NIfTI suffix, or None when the file is not NIfTI."""
    for suffix in NIFTI_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return None


def plan_jobs(source: Path, target: Path, in_channels: int) -> list[PredictionJob]:
    """Pair inputs with outputs: a file to a file (or into a folder), a folder to a folder.

    In a folder, files named CASE_0000.nii.gz, CASE_0001.nii.gz, ... (nnU-Net's convention) are
    one case with one channel each, written as CASE.nii.gz; any other NIfTI file is one case.
    """
    source, target = Path(source), Path(target)
    if source.is_file():
        if nifti_stem(source) is None:
            msg = f"{source} is not a NIfTI file (.nii or .nii.gz)."
            raise BundleError(msg)
        if target.is_dir():
            return [PredictionJob(_case_id(source), (source,), target / f"{_case_id(source)}_seg.nii.gz")]
        if nifti_stem(target) is None:
            msg = f"--output {target} must end in .nii.gz or .nii, or be an existing folder."
            raise BundleError(msg)
        return [PredictionJob(_case_id(source), (source,), target)]
    if not source.is_dir():
        msg = f"Input {source} not found; give a NIfTI file or a folder of them."
        raise BundleError(msg)
    if target.exists() and not target.is_dir():
        msg = f"Input {source} is a folder, so --output must be a folder too, but {target} is a file."
        raise BundleError(msg)

    groups = _group_cases(sorted(path for path in source.iterdir() if nifti_stem(path) is not None), in_channels)
    if not groups:
        msg = f"{source} contains no NIfTI files (.nii or .nii.gz)."
        raise BundleError(msg)
    return [PredictionJob(case_id, inputs, target / f"{case_id}.nii.gz") for case_id, inputs in groups.items()]


def _case_id(path: Path) -> str:
    stem = nifti_stem(path) or path.stem
    match = CHANNEL_SUFFIX.match(stem)
    return match["case"] if match else stem


def _group_cases(paths: list[Path], in_channels: int) -> dict[str, tuple[Path, ...]]:
    matches = [CHANNEL_SUFFIX.match(nifti_stem(path)) for path in paths]
    if not paths or not all(matches):
        return {nifti_stem(path): (path,) for path in paths}

    groups: dict[str, list[Path]] = {}
    for path, match in sorted(zip(paths, matches), key=lambda pair: (pair[1]["case"], pair[1]["channel"])):
        groups.setdefault(match["case"], []).append(path)
    if in_channels == 1 and any(len(files) > 1 for files in groups.values()):
        # Names such as val_0014 and val_0015 are separate single-channel cases, not channels of one case.
        return {nifti_stem(path): (path,) for path in paths}
    incomplete = {case: len(files) for case, files in groups.items() if in_channels > 1 and len(files) != in_channels}
    if incomplete:
        msg = f"The model takes {in_channels} channel files per case, but these cases have another count: {incomplete}."
        raise BundleError(msg)
    return {case: tuple(files) for case, files in groups.items()}


def predict_case(model: LoadedModel, inputs: tuple[Path, ...], device: torch.device) -> nib.Nifti1Image:
    """Segment one case and return its label map as a NIfTI image on the first input's grid."""
    description = model.description
    image, source_axcodes = load_image(tuple(inputs), description.preprocessing)
    if image.shape[0] != description.network.in_channels:
        msg = (
            f"{inputs[0]}: the model takes {description.network.in_channels} channels "
            f"({', '.join(description.channels)}) but the input has {image.shape[0]}."
        )
        raise BundleError(msg)

    label_map = predict_label_map(model.network, image, description.patch_size, device, description.sw_overlap, amp=device.type == "cuda")
    reference = nib.load(inputs[0])
    spatial_shape = reference.shape[:3]
    if label_map.ndim < len(source_axcodes):  # a 2D model on a single-slice volume: restore the slice axis
        label_map = label_map[..., None]
    label_map = restore_orientation(label_map, description.preprocessing.orientation, source_axcodes)
    if label_map.shape != tuple(spatial_shape):
        msg = f"{inputs[0]}: prediction shape {label_map.shape} does not match the input's {tuple(spatial_shape)}."
        raise BundleError(msg)
    return _label_image(label_map.astype(np.uint8), reference)


def _label_image(label_map: np.ndarray, reference) -> nib.Nifti1Image:
    """Wrap a label map as an unscaled uint8 NIfTI image with the reference's qform and sform, codes included."""
    header = nib.Nifti1Header()
    header.set_data_dtype(np.uint8)
    header.set_xyzt_units(*reference.header.get_xyzt_units())
    header["descrip"] = b"hpo label map"
    image = nib.Nifti1Image(label_map, None, header)
    qform, qform_code = reference.get_qform(coded=True)
    sform, sform_code = reference.get_sform(coded=True)
    image.set_qform(qform, int(qform_code))
    image.set_sform(sform, int(sform_code))
    if not qform_code and not sform_code:  # the reference had no spatial codes; keep the affine nibabel derived
        image.set_sform(reference.affine, "aligned")
    return image


def write_label_map(image: nib.Nifti1Image, path: Path) -> Path:
    """Save through a temporary file in the same folder, so readers never see half a file."""
    suffix = ".nii.gz" if Path(path).name.endswith(".nii.gz") else ".nii"
    with atomic_path(path, suffix=suffix) as temporary:
        nib.save(image, temporary)
    return Path(path)


def predict(model: LoadedModel, source: Path, target: Path, device: torch.device) -> list[Path]:
    """Segment a NIfTI file or every case in a folder; returns the written label maps."""
    jobs = plan_jobs(source, target, model.description.network.in_channels)
    written = []
    for job in jobs:
        image = predict_case(model, job.inputs, device)
        written.append(write_label_map(image, job.output))
        counts = np.bincount(np.asarray(image.dataobj).ravel(), minlength=len(model.description.labels))
        found = ", ".join(f"{name} {int(counts[value])}" for value, name in model.description.structure_names.items())
        logger.info("%s -> %s (voxels: %s)", job.inputs[0].name, job.output, found)
    return written
