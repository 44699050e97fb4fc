"""A short real hippocampus study, trained once per test session and shared by export, artifact and dashboard tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna
from filelock import FileLock

from hpo.config import load_config
from hpo.config.loader import study_dir
from hpo.config.schema import StudyConfig
from hpo.study.artifacts import open_artifact_store
from hpo.study.runner import open_study, run_worker
from tests.conftest import HIPPOCAMPUS, tiny_study_dict, write_config


@dataclass(frozen=True)
class RealStudy:
    """A finished study on disk: its config file, the loaded config and the opened study."""

    config_path: Path
    config: StudyConfig
    study: optuna.Study
    storage_url: str

    def artifact_store(self):
        return open_artifact_store(self.config.study.artifact_store, study_dir(self.config))


def real_study(base: Path) -> RealStudy:
    """Train the study into `base/real_study` unless an earlier test of this session already did."""
    folder = base / "real_study"
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / "study.yaml"
    with FileLock(str(folder) + ".lock"):
        if not config_path.is_file():
            overrides = {"training": {"device": "cpu", "iterations_per_epoch": 6, "seed": 0}}
            write_config(folder / "study.partial.yaml", tiny_study_dict(HIPPOCAMPUS, folder / "runs", **overrides))
            run_worker(load_config(folder / "study.partial.yaml"))
            (folder / "study.partial.yaml").rename(config_path)
    config = load_config(config_path)
    handle = open_study(config, create=False)
    return RealStudy(config_path, config, handle.study, handle.storage_url)
