"""Checks that a dataset's files can be trained on: presence, readability, shapes, affines and label values."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from hpo.data.layouts import Case, DatasetInfo
from hpo.errors import DatasetError

AFFINE_TOLERANCE = 1e-3  # millimetres; header round-off in real data is far smaller


def check_headers(info: DatasetInfo, cases: list[Case]) -> None:
    """Check every case's files from their headers alone; raise one error that lists every problem."""
    problems: list[str] = []
    for case in cases:
        problems.extend(case_header_problems(case))
    if problems:
        msg = f"Dataset {info.root} has {len(problems)} problems; fix or remove these cases:"
        raise DatasetError(msg, problems)


def case_header_problems(case: Case) -> list[str]:
    """Return what is wrong with one case's headers: missing or unreadable files, shape or affine mismatch."""
    files = [*case.images, case.label]
    missing = [f"{path}: file not found (case {case.case_id})" for path in files if not path.is_file()]
    if missing:
        return missing

    headers = {}
    problems = []
    for path in files:
        try:
            headers[path] = nib.load(path)
        except Exception as error:  # nibabel raises many types for a corrupt or foreign file
            problems.append(f"{path}: unreadable as NIfTI ({type(error).__name__}: {error})")
    if problems:
        return problems

    label = headers[case.label]
    for path in case.images:
        problems.extend(_compare_grids(path, headers[path], case.label, label))
    return problems


def _compare_grids(image_path: Path, image, label_path: Path, label) -> list[str]:
    spatial = image.shape[: len(label.shape)]
    if tuple(spatial) != tuple(label.shape):
        return [f"{label_path}: shape {tuple(label.shape)} does not match image {image_path.name} shape {tuple(image.shape)}"]
    if not np.allclose(image.affine, label.affine, atol=AFFINE_TOLERANCE):
        return [
            f"{label_path}: affine differs from image {image_path.name} "
            f"(max difference {np.abs(image.affine - label.affine).max():.4g}); resample the label onto the image grid"
        ]
    return []


def label_value_problems(label_path: Path, values: np.ndarray, declared: dict[int, str]) -> list[str]:
    """Return a problem line when a label file contains values that are not whole or not declared."""
    unique = np.unique(values)
    if not np.all(np.equal(np.mod(unique, 1), 0)):
        fractional = unique[np.mod(unique, 1) != 0][:5].tolist()
        return [f"{label_path}: label values must be whole numbers but found {fractional}"]
    undeclared = sorted(set(int(v) for v in unique) - set(declared))
    if undeclared:
        return [f"{label_path}: label values {undeclared} are not declared in dataset.json labels {sorted(declared)}"]
    return []
