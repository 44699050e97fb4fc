"""Broken datasets: each problem gets its own clear error naming the file; all are listed together."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from hpo.data.cache import prepare_cases
from hpo.data.layouts import read_dataset
from hpo.data.preprocessing import PreprocessingSettings
from hpo.errors import DatasetError
from tests.conftest import make_volume, write_decathlon


def prepare(root, tmp_path):
    info = read_dataset(root)
    return prepare_cases(info, list(info.cases), PreprocessingSettings(), tmp_path / "cache")


def test_missing_label(tmp_path):
    root = write_decathlon(tmp_path / "set")
    (root / "labelsTr" / "case_001.nii.gz").unlink()
    with pytest.raises(DatasetError, match=r"labelsTr/case_001\.nii\.gz: file not found \(case case_001\)"):
        prepare(root, tmp_path)


def test_shape_mismatch(tmp_path):
    root = write_decathlon(tmp_path / "set")
    nib.save(nib.Nifti1Image(np.zeros((20, 24, 15), np.uint8), np.eye(4)), root / "labelsTr" / "case_002.nii.gz")
    with pytest.raises(DatasetError, match=r"case_002\.nii\.gz: shape \(20, 24, 15\) does not match image case_002\.nii\.gz shape \(20, 24, 16\)"):
        prepare(root, tmp_path)


def test_affine_mismatch(tmp_path):
    root = write_decathlon(tmp_path / "set")
    _, label = make_volume(seed=0)
    shifted = np.eye(4)
    shifted[0, 3] = 5.0
    nib.save(nib.Nifti1Image(label, shifted), root / "labelsTr" / "case_000.nii.gz")
    with pytest.raises(DatasetError, match=r"case_000\.nii\.gz: affine differs from image case_000\.nii\.gz \(max difference 5\)"):
        prepare(root, tmp_path)


def test_undeclared_label_value(tmp_path):
    root = write_decathlon(tmp_path / "set")
    _, label = make_volume(seed=3)
    label[0, 0, 0] = 7
    nib.save(nib.Nifti1Image(label, np.eye(4)), root / "labelsTr" / "case_003.nii.gz")
    with pytest.raises(DatasetError, match=r"case_003\.nii\.gz: label values \[7\] are not declared in dataset\.json labels \[0, 1, 2\]"):
        prepare(root, tmp_path)


def test_fractional_label_value(tmp_path):
    root = write_decathlon(tmp_path / "set")
    _, label = make_volume(seed=1)
    values = label.astype(np.float32)
    values[1, 1, 1] = 0.5
    nib.save(nib.Nifti1Image(values, np.eye(4)), root / "labelsTr" / "case_001.nii.gz")
    with pytest.raises(DatasetError, match=r"case_001\.nii\.gz: label values must be whole numbers but found \[0\.5\]"):
        prepare(root, tmp_path)


def test_unreadable_file(tmp_path):
    root = write_decathlon(tmp_path / "set")
    (root / "imagesTr" / "case_002.nii.gz").write_bytes(gzip.compress(b"not a nifti file at all" * 20))
    with pytest.raises(DatasetError, match=r"imagesTr/case_002\.nii\.gz: unreadable as NIfTI"):
        prepare(root, tmp_path)


def test_every_problem_listed(tmp_path):
    root = write_decathlon(tmp_path / "set")
    (root / "labelsTr" / "case_000.nii.gz").unlink()
    nib.save(nib.Nifti1Image(np.zeros((5, 5, 5), np.uint8), np.eye(4)), root / "labelsTr" / "case_003.nii.gz")
    with pytest.raises(DatasetError) as raised:
        prepare(root, tmp_path)
    assert raised.value.problems[0].endswith("file not found (case case_000)")
    assert "case_003.nii.gz: shape (5, 5, 5)" in raised.value.problems[1]
    assert len(raised.value.problems) == 2


def test_real_float32_label_accepted(hippocampus_dir, tmp_path):
    info = read_dataset(hippocampus_dir)
    float_labels = [case for case in info.cases if nib.load(case.label).get_data_dtype() == np.float32]
    assert float_labels, "the hippocampus set is documented to hold one float32 label file"
    prepared = prepare_cases(info, float_labels[:1], PreprocessingSettings(), tmp_path / "cache")
    assert prepared[0].label.dtype == np.uint8
    assert set(np.unique(prepared[0].label)) <= {0, 1, 2}
