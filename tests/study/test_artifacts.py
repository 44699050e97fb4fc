"""Trial artifacts: every finished trial, complete or pruned, uploads its checkpoint and two figures."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import optuna
import pytest
import torch
from optuna.artifacts import FileSystemArtifactStore, download_artifact, get_all_artifact_meta
from optuna.trial import TrialState

from hpo.config.loader import study_dir
from hpo.data.study_data import load_study_data
from hpo.errors import ConfigError
from hpo.study.artifacts import PrefixedArtifactStore, open_artifact_store
from hpo.study.objective import Objective
from hpo.study.progress import StudyClock
from tests.conftest import HIPPOCAMPUS
from tests.export.real_study import real_study

EXPECTED_FILES = {"best_model.pt", "learning_curve.png", "validation_overlay.png"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trained_study(tmp_path_factory):
    if not (HIPPOCAMPUS / "dataset.json").is_file():
        pytest.skip(f"real hippocampus data not found at {HIPPOCAMPUS}")
    return real_study(tmp_path_factory.getbasetemp())


def _check_artifacts(study: optuna.Study, trial, store, tmp_path: Path) -> None:
    metas = {meta.filename: meta for meta in get_all_artifact_meta(trial, storage=study._storage)}
    assert set(metas) == EXPECTED_FILES
    assert trial.user_attrs["artifacts"] == {name: meta.artifact_id for name, meta in metas.items()}
    for name in ("learning_curve.png", "validation_overlay.png"):
        assert metas[name].mimetype == "image/png"
        path = tmp_path / f"{trial.number}_{name}"
        download_artifact(artifact_store=store, file_path=str(path), artifact_id=metas[name].artifact_id)
        assert path.read_bytes().startswith(PNG_SIGNATURE), name
    with store.open_reader(metas["best_model.pt"].artifact_id) as reader:
        state = torch.load(io.BytesIO(reader.read()), weights_only=True)
    assert all(isinstance(value, torch.Tensor) for value in state.values())


def test_finished_trials_have_artifacts(trained_study, tmp_path):
    store = trained_study.artifact_store()
    finished = trained_study.study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert finished
    for trial in finished:
        _check_artifacts(trained_study.study, trial, store, tmp_path)
    assert (study_dir(trained_study.config) / "artifacts").is_dir(), "the default store is the study folder's artifacts/"


def test_pruned_trial_has_artifacts(trained_study, tmp_path):
    """A pruner that rejects every value below 1.0 stops the trial after its first epoch."""
    config = trained_study.config.model_copy(
        update={"study": trained_study.config.study.model_copy(update={"artifact_store": str(tmp_path / "store")})}
    )
    data = load_study_data(config.data, config.model.spatial_dims)
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'pruned.db'}", direction="maximize",
        pruner=optuna.pruners.ThresholdPruner(lower=1.0),
    )
    objective = Objective(config, data, tmp_path / "study", StudyClock(1, None), lambda: 1)

    study.optimize(objective, n_trials=1)

    trial = study.trials[0]
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs["epochs_run"] == 1
    _check_artifacts(study, trial, FileSystemArtifactStore(str(tmp_path / "store")), tmp_path)


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("relative/folder", "is a relative path; give an absolute folder"),
        ("gs://bucket", "is not supported; give a folder path or an s3://bucket/prefix URL"),
        ("s3://", "names no bucket"),
        ("s3:///prefix", "names no bucket"),
    ],
)
def test_artifact_store_rejects_bad_locations(tmp_path, location, message):
    with pytest.raises(ConfigError, match=message):
        open_artifact_store(location, tmp_path)


def test_artifact_store_folder_locations(tmp_path, monkeypatch):
    monkeypatch.setenv("HPO_TEST_ARTIFACTS", str(tmp_path / "from_env"))
    store = open_artifact_store("$HPO_TEST_ARTIFACTS/store", tmp_path / "study")
    store.write("abc", io.BytesIO(b"content"))
    assert (tmp_path / "from_env" / "store" / "abc").read_bytes() == b"content"

    open_artifact_store(None, tmp_path / "study")
    assert (tmp_path / "study" / "artifacts").is_dir()


def test_s3_store_without_boto3_names_the_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "boto3", None)  # makes `import boto3` raise ImportError
    with pytest.raises(ConfigError, match=r"needs boto3; install it with: pip install 'hpo\[s3\]'"):
        open_artifact_store("s3://bucket/prefix", tmp_path)


def test_prefixed_store_keeps_keys_under_prefix(tmp_path):
    inner = FileSystemArtifactStore(str(tmp_path))
    (tmp_path / "runs").mkdir()
    store = PrefixedArtifactStore(inner, "/runs/")
    store.write("id1", io.BytesIO(b"data"))
    assert (tmp_path / "runs" / "id1").read_bytes() == b"data"
    with store.open_reader("id1") as reader:
        assert reader.read() == b"data"
    store.remove("id1")
    assert not (tmp_path / "runs" / "id1").exists()
