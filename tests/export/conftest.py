"""Fixtures for export and predict tests: the session's real study and its exported model."""

from __future__ import annotations

import pytest

from hpo.study.best_model import export_trial
from tests.conftest import HIPPOCAMPUS
from tests.export.real_study import RealStudy, real_study


@pytest.fixture(scope="session")
def trained_study(tmp_path_factory) -> RealStudy:
    if not (HIPPOCAMPUS / "dataset.json").is_file():
        pytest.skip(f"real hippocampus data not found at {HIPPOCAMPUS}")
    return real_study(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def exported_model(trained_study, tmp_path_factory):
    """The best trial exported once; tests must not modify it."""
    store = trained_study.artifact_store()
    out = tmp_path_factory.mktemp("export") / "best_model"
    trial, folder = export_trial(trained_study.study, trained_study.storage_url, store, out)
    return trial, folder
