"""Predict with an exported model: recorded Dice reproduced, input grid kept, other orientations, folders."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from hpo.export.bundle import BundleError, load_bundle
from hpo.export.predict import plan_jobs, predict
from hpo.training.metrics import dice_per_structure
from tests.conftest import HIPPOCAMPUS

CPU = torch.device("cpu")


def _labels(path) -> torch.Tensor:
    return torch.from_numpy(np.rint(np.asarray(nib.load(path).dataobj)).astype(np.int64))[None, None]


def test_predict_reproduces_recorded_dice(trained_study, exported_model, tmp_path):
    trial, folder = exported_model
    model = load_bundle(folder, CPU)
    cases = trained_study.study.user_attrs["validation_cases"]
    assert cases, "the study must have validation cases"

    scores = []
    for case in cases:
        written = predict(model, HIPPOCAMPUS / "imagesTr" / f"{case}.nii.gz", tmp_path / f"{case}.nii.gz", CPU)
        scores.append(dice_per_structure(_labels(written[0]), _labels(HIPPOCAMPUS / "labelsTr" / f"{case}.nii.gz"), 3))
    reproduced = dict(zip(["Anterior", "Posterior"], np.mean(scores, axis=0)))

    recorded = trial.user_attrs["dice_per_structure"]
    assert max(recorded.values()) > 0.0, "an all-zero Dice would make the comparison meaningless"
    for name, value in recorded.items():
        assert reproduced[name] == pytest.approx(value, abs=0.01), name


def test_prediction_has_input_shape_and_affine(exported_model, tmp_path):
    _, folder = exported_model
    source = HIPPOCAMPUS / "imagesTr" / "hippocampus_003.nii.gz"
    output = predict(load_bundle(folder, CPU), source, tmp_path / "out.nii.gz", CPU)[0]

    written, original = nib.load(output), nib.load(source)
    assert written.shape == original.shape
    np.testing.assert_allclose(written.affine, original.affine, atol=1e-6)
    assert written.get_data_dtype() == np.uint8
    assert set(np.unique(np.asarray(written.dataobj))) <= {0, 1, 2}


def test_lps_input_gives_same_segmentation(exported_model, tmp_path):
    """The case re-saved with its first two axes flipped (RAS to LPS) must segment to the same anatomy."""
    _, folder = exported_model
    model = load_bundle(folder, CPU)
    source = HIPPOCAMPUS / "imagesTr" / "hippocampus_003.nii.gz"
    original = nib.load(source)
    lps = original.as_reoriented([[0, -1], [1, -1], [2, 1]])  # flip the first two axes
    assert nib.aff2axcodes(lps.affine) == ("L", "P", "S")
    nib.save(lps, tmp_path / "lps.nii.gz")

    ras_prediction = nib.load(predict(model, source, tmp_path / "ras_seg.nii.gz", CPU)[0])
    lps_prediction = nib.load(predict(model, tmp_path / "lps.nii.gz", tmp_path / "lps_seg.nii.gz", CPU)[0])

    assert lps_prediction.shape == lps.shape
    np.testing.assert_allclose(lps_prediction.affine, lps.affine, atol=1e-6)
    back_to_ras = nib.as_closest_canonical(lps_prediction)
    np.testing.assert_array_equal(np.asarray(back_to_ras.dataobj), np.asarray(ras_prediction.dataobj))


def test_predict_folder_writes_one_file_per_case(exported_model, tmp_path):
    _, folder = exported_model
    inputs = tmp_path / "in"
    inputs.mkdir()
    for case in ("hippocampus_003", "hippocampus_006"):
        (inputs / f"{case}.nii.gz").write_bytes((HIPPOCAMPUS / "imagesTr" / f"{case}.nii.gz").read_bytes())

    written = predict(load_bundle(folder, CPU), inputs, tmp_path / "out", CPU)

    assert sorted(path.name for path in written) == ["hippocampus_003.nii.gz", "hippocampus_006.nii.gz"]
    for path in written:
        assert nib.load(path).shape == nib.load(inputs / path.name).shape


def test_plan_groups_nnunet_channel_files(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("pat1_0001.nii.gz", "pat1_0000.nii.gz", "pat2_0000.nii.gz", "pat2_0001.nii.gz"):
        (inputs / name).touch()

    jobs = plan_jobs(inputs, tmp_path / "out", in_channels=2)

    assert [job.case_id for job in jobs] == ["pat1", "pat2"]
    assert [path.name for path in jobs[0].inputs] == ["pat1_0000.nii.gz", "pat1_0001.nii.gz"]
    assert jobs[1].output == tmp_path / "out" / "pat2.nii.gz"


@pytest.mark.parametrize(
    ("names", "case_ids"),
    [
        (["val_0014.nii.gz", "val_0015.nii.gz"], ["val_0014", "val_0015"]),  # imported 2D frames, one case each
        (["pat1_0000.nii.gz", "pat2_0000.nii.gz"], ["pat1", "pat2"]),  # nnU-Net single-channel names
    ],
)
def test_plan_single_channel_names(tmp_path, names, case_ids):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in names:
        (inputs / name).touch()
    assert [job.case_id for job in plan_jobs(inputs, tmp_path / "out", in_channels=1)] == case_ids


@pytest.mark.parametrize(
    ("names", "in_channels", "message"),
    [
        ([], 1, "contains no NIfTI files"),  # an empty folder
        (["notes.txt"], 1, "contains no NIfTI files"),  # no NIfTI among the files
        (["pat1_0000.nii.gz", "pat1_0001.nii.gz", "pat2_0000.nii.gz"], 2, r"another count: \{'pat2': 1\}"),  # a missing channel
    ],
)
def test_plan_rejects_bad_input_folders(tmp_path, names, in_channels, message):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in names:
        (inputs / name).touch()
    with pytest.raises(BundleError, match=message):
        plan_jobs(inputs, tmp_path / "out", in_channels)


def test_plan_rejects_missing_and_non_nifti_inputs(tmp_path):
    with pytest.raises(BundleError, match="not found"):
        plan_jobs(tmp_path / "absent.nii.gz", tmp_path / "out.nii.gz", 1)
    (tmp_path / "image.png").touch()
    with pytest.raises(BundleError, match="is not a NIfTI file"):
        plan_jobs(tmp_path / "image.png", tmp_path / "out.nii.gz", 1)
    (tmp_path / "image.nii.gz").touch()
    with pytest.raises(BundleError, match=r"must end in \.nii\.gz or \.nii, or be an existing folder"):
        plan_jobs(tmp_path / "image.nii.gz", tmp_path / "segmentation", 1)
    (tmp_path / "folder").mkdir()
    assert plan_jobs(tmp_path / "image.nii.gz", tmp_path / "folder", 1)[0].output == tmp_path / "folder" / "image_seg.nii.gz"


def test_predict_rejects_wrong_channel_count(exported_model, tmp_path):
    _, folder = exported_model
    image = nib.load(HIPPOCAMPUS / "imagesTr" / "hippocampus_003.nii.gz")
    two_channels = np.stack([np.asarray(image.dataobj)] * 2, axis=-1).astype(np.float32)
    nib.save(nib.Nifti1Image(two_channels, image.affine), tmp_path / "two.nii.gz")

    with pytest.raises(BundleError, match=r"takes 1 channels \(MRI\) but the input has 2"):
        predict(load_bundle(folder, CPU), tmp_path / "two.nii.gz", tmp_path / "out.nii.gz", CPU)
