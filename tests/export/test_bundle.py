"""Export: the bundle's files and contents, MONAI's own tooling on it, and refusals."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from optuna.trial import TrialState

from hpo import __version__
from hpo.config import load_config
from hpo.errors import StudyError
from hpo.export.bundle import BundleError, load_bundle, read_description
from hpo.export.predict import predict
from hpo.study.best_model import export_trial, select_trial
from hpo.study.runner import open_study
from tests.conftest import HIPPOCAMPUS, tiny_study_dict, write_config

BUNDLE_FILES = (
    "configs/metadata.json", "configs/inference.json", "configs/hpo.json", "models/model.pt", "docs/README.md",
)


def test_export_writes_monai_bundle_layout(exported_model):
    trial, folder = exported_model
    for relative in BUNDLE_FILES:
        assert (folder / relative).is_file(), relative

    state = torch.load(folder / "models" / "model.pt", weights_only=True)
    assert all(isinstance(value, torch.Tensor) for value in state.values())
    metadata = json.loads((folder / "configs" / "metadata.json").read_text())
    assert metadata["network_data_format"]["outputs"]["pred"]["channel_def"] == {"0": "background", "1": "Anterior", "2": "Posterior"}
    assert metadata["network_data_format"]["inputs"]["image"]["num_channels"] == 1


def test_export_describes_trial_and_preprocessing(exported_model, trained_study):
    trial, folder = exported_model
    values = json.loads((folder / "configs" / "hpo.json").read_text())

    assert values["hpo_version"] == __version__
    assert values["labels"] == {"0": "background", "1": "Anterior", "2": "Posterior"}
    assert values["preprocessing"] == {"orientation": "RAS", "clip_percentiles": [0.5, 99.5], "spatial_dims": 3}
    assert values["network"]["channels"] == [8, 16]
    assert values["inference"]["patch_size"] == [16, 16, 16]
    assert values["trial"]["number"] == trial.number
    assert values["trial"]["params"] == trial.params
    assert values["trial"]["dice_per_structure"] == trial.user_attrs["dice_per_structure"]
    assert values["study"]["validation_cases"] == trained_study.study.user_attrs["validation_cases"]
    best = max(trained_study.study.get_trials(states=(TrialState.COMPLETE,)), key=lambda item: item.value)
    assert trial.number == best.number, "without --trial the best completed trial is exported"


def test_monai_bundle_runner_matches_hpo_predict(exported_model, tmp_path):
    """MONAI's own bundle runner, on inference.json, segments a case exactly as hpo predict does."""
    from monai.bundle import run

    _, folder = exported_model
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(HIPPOCAMPUS / "imagesTr" / "hippocampus_003.nii.gz", inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI warns that bundle configs run code, and about logging.conf
        run(config_file=str(folder / "configs" / "inference.json"), bundle_root=str(folder),
            dataset_dir=str(inputs), output_dir=str(tmp_path / "monai"))
    ours = predict(load_bundle(folder), inputs / "hippocampus_003.nii.gz", tmp_path / "ours.nii.gz", torch.device("cpu"))[0]

    assert torch.is_grad_enabled(), "running the bundle must not switch gradients off for the whole process"
    monai_result = nib.load(tmp_path / "monai" / "hippocampus_003_seg.nii.gz")
    np.testing.assert_allclose(monai_result.affine, nib.load(ours).affine, atol=1e-6)
    agreement = np.mean(np.asarray(monai_result.dataobj).squeeze() == np.asarray(nib.load(ours).dataobj))
    assert agreement > 0.999


def test_inference_config_network_takes_weights(exported_model):
    from monai.bundle import ConfigParser

    _, folder = exported_model
    parser = ConfigParser()
    parser.read_config(str(folder / "configs" / "inference.json"))
    network = parser.get_parsed_content("network_def")
    network.load_state_dict(torch.load(folder / "models" / "model.pt", weights_only=True), strict=True)


def test_export_refuses_existing_folder_without_force(trained_study, exported_model, tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "keep.txt").write_text("user file")
    with pytest.raises(BundleError, match="exists and is not empty; choose another --out or pass --force"):
        export_trial(trained_study.study, trained_study.storage_url, trained_study.artifact_store(), out)

    export_trial(trained_study.study, trained_study.storage_url, trained_study.artifact_store(), out, overwrite=True)
    assert not (out / "keep.txt").exists()
    assert read_description(out).labels[1] == "Anterior"
    assert not list(tmp_path.glob(".model.*.partial")), "no staging folder is left behind"


def test_export_downloads_checkpoint_from_artifacts(trained_study, tmp_path):
    """A worker elsewhere leaves only the artifact: export fetches the weights from the artifact store."""
    trial = select_trial(trained_study.study)
    checkpoint = Path(trial.user_attrs["checkpoint"])
    hidden = checkpoint.with_name("moved_away.pt")
    checkpoint.rename(hidden)
    try:
        _, folder = export_trial(trained_study.study, trained_study.storage_url, trained_study.artifact_store(), tmp_path / "model")
    finally:
        hidden.rename(checkpoint)
    original = torch.load(checkpoint, weights_only=True)
    exported = torch.load(folder / "models" / "model.pt", weights_only=True)
    assert original.keys() == exported.keys()
    for key in original:
        assert torch.equal(original[key], exported[key]), key


def test_load_bundle_rejects_damaged_folders(exported_model, tmp_path):
    _, folder = exported_model
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    weights = copy / "models" / "model.pt"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(BundleError, match="checksum does not match"):
        load_bundle(copy)

    (copy / "configs" / "hpo.json").unlink()
    with pytest.raises(BundleError, match="is not an hpo model folder"):
        load_bundle(copy)


def _empty_study(tmp_path: Path):
    config = load_config(write_config(tmp_path / "empty.yaml", tiny_study_dict(HIPPOCAMPUS, tmp_path / "runs")))
    study = open_study(config).study
    study.set_user_attr("labels", {"0": "background", "1": "Anterior"})
    return study


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # ask and tell on a study whose storage has heartbeats
@pytest.mark.parametrize(
    ("finish", "number", "message"),
    [
        (None, None, "has no completed trial yet"),  # no trial at all
        (TrialState.PRUNED, None, r"pruned trials \[0\] kept their best weights and can be exported with --trial N"),
        (TrialState.FAIL, 0, "Trial 0 of study 'tiny' is FAIL; only complete or pruned trials"),
        (TrialState.COMPLETE, 7, "has no trial 7"),  # a trial number that does not exist
    ],
)
def test_select_trial_refuses(tmp_path, finish, number, message):
    study = _empty_study(tmp_path)
    if finish is not None:
        trial = study.ask()
        trial.set_user_attr("training_config", {})
        study.tell(trial, 0.5 if finish == TrialState.COMPLETE else None, state=finish)
    with pytest.raises(StudyError, match=message):
        select_trial(study, number)


def test_export_cli_refuses_study_without_trials(tmp_path, capsys):
    from hpo.cli.main import main

    config_path = write_config(tmp_path / "empty.yaml", tiny_study_dict(HIPPOCAMPUS, tmp_path / "runs"))
    open_study(load_config(config_path))
    assert main(["export", str(config_path), "--out", str(tmp_path / "model")]) == 2
    assert "has no completed trial yet" in capsys.readouterr().err
    assert not (tmp_path / "model").exists()
