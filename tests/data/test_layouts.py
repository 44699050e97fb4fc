"""Dataset layouts: Decathlon and nnU-Net v2, on real hippocampus files and on generated NIfTI."""

from __future__ import annotations

import json
import shutil

import pytest

from hpo.data.cache import prepare_cases
from hpo.data.layouts import read_dataset
from hpo.data.preprocessing import PreprocessingSettings
from hpo.errors import DatasetError
from tests.conftest import write_decathlon, write_nnunet


def test_real_decathlon_hippocampus(hippocampus_dir):
    info = read_dataset(hippocampus_dir)
    assert info.layout == "decathlon"
    assert len(info.cases) == 200
    assert info.labels == {0: "background", 1: "Anterior", 2: "Posterior"}
    assert info.cases[0].label.is_file()


def test_real_files_in_nnunet_layout(tmp_path, hippocampus_dir):
    root = tmp_path / "Dataset004_Hippocampus"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for case_id in ("hippocampus_003", "hippocampus_006"):
        shutil.copy(hippocampus_dir / "imagesTr" / f"{case_id}.nii.gz", root / "imagesTr" / f"{case_id}_0000.nii.gz")
        shutil.copy(hippocampus_dir / "labelsTr" / f"{case_id}.nii.gz", root / "labelsTr" / f"{case_id}.nii.gz")
    manifest = {
        "channel_names": {"0": "MRI"}, "labels": {"background": 0, "Anterior": 1, "Posterior": 2},
        "numTraining": 2, "file_ending": ".nii.gz",
    }
    (root / "dataset.json").write_text(json.dumps(manifest))

    info = read_dataset(root)
    assert info.layout == "nnunetv2"
    assert [case.case_id for case in info.cases] == ["hippocampus_003", "hippocampus_006"]
    prepared = prepare_cases(info, list(info.cases), PreprocessingSettings(), tmp_path / "cache")
    assert prepared[0].image.shape[0] == 1
    assert set(prepared[0].label.ravel().tolist()) == {0, 1, 2}


def test_generated_nnunet_two_channels(tmp_path):
    info = read_dataset(write_nnunet(tmp_path / "set", n_cases=3, channels=2))
    assert info.channel_names == ("channel0", "channel1")
    assert len(info.cases[0].images) == 2
    prepared = prepare_cases(info, list(info.cases), PreprocessingSettings(), tmp_path / "cache")
    assert prepared[0].image.shape == (2, 20, 24, 16)


def test_generated_decathlon(tmp_path):
    info = read_dataset(write_decathlon(tmp_path / "set", n_cases=3))
    assert info.layout == "decathlon"
    assert info.structure_names == {1: "left", 2: "right"}


def test_nnunet_missing_channel_named(tmp_path):
    root = write_nnunet(tmp_path / "set", n_cases=2, channels=2)
    (root / "imagesTr" / "pat1_0001.nii.gz").unlink()
    with pytest.raises(DatasetError, match=r"pat1: channels \[1\] missing"):
        read_dataset(root)


def test_missing_dataset_json_suggests_download(tmp_path):
    with pytest.raises(DatasetError, match=r"dataset\.json not found.*hpo data download"):
        read_dataset(tmp_path)


def test_decathlon_entry_without_label(tmp_path):
    root = write_decathlon(tmp_path / "set", n_cases=2)
    manifest = json.loads((root / "dataset.json").read_text())
    del manifest["training"][1]["label"]
    (root / "dataset.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match=r"training entry 1 needs 'image' and 'label'"):
        read_dataset(root)
