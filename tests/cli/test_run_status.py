"""`hpo run` and `hpo status` as a user calls them, in a subprocess where it matters."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from hpo.cli.main import main
from tests.conftest import tiny_study_dict, write_config


def hpo(*arguments: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hpo.cli.main", *arguments], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_run_then_status_json(tiny_config_path, tmp_path):
    finished = hpo("run", str(tiny_config_path), "--n-trials", "1")
    assert finished.returncode == 0, finished.stderr
    assert "Trial 0 started: learning_rate=" in finished.stderr
    assert "trial 0 epoch 2/2" in finished.stderr
    assert "mean validation Dice" in finished.stdout

    status = hpo("status", str(tiny_config_path), "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    summary = json.loads(status.stdout)
    assert summary["study_name"] == "tiny"
    assert summary["n_trials_by_state"]["COMPLETE"] == 1
    best = summary["best_trial"]
    assert best["number"] == 0
    assert set(best["user_attrs"]["dice_per_structure"]) == {"Anterior", "Posterior"}


def test_invalid_config_writes_nothing(tmp_path, hippocampus_dir, capsys):
    config = tiny_study_dict(hippocampus_dir, tmp_path / "runs")
    config["search_space"]["batch_size"] = {"choices": []}
    path = write_config(tmp_path / "bad.yaml", config)

    assert main(["run", str(path)]) == 2
    error = capsys.readouterr().err
    assert "search_space.batch_size: choices is empty" in error
    assert "Traceback" not in error
    assert not (tmp_path / "runs").exists()


def test_status_of_unknown_study(tiny_config_path, tmp_path, capsys):
    assert main(["status", str(tiny_config_path), "--storage", f"sqlite:///{tmp_path / 'empty.db'}"]) == 2
    assert "Study 'tiny' not found" in capsys.readouterr().err
    assert not (tmp_path / "empty.db").exists(), "status must not create a storage file"


def test_broken_dataset_stops_run(tmp_path, capsys):
    config = tiny_study_dict(tmp_path / "nowhere", tmp_path / "runs")
    assert main(["run", str(write_config(tmp_path / "study.yaml", config))]) == 2
    assert "nowhere/dataset.json not found" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "tiny" / "study.db").exists(), "a broken dataset must leave no study behind"


def test_help_is_fast():
    started = time.monotonic()
    result = hpo("--help")
    assert result.returncode == 0
    assert "run" in result.stdout
    assert "status" in result.stdout
    assert time.monotonic() - started < 10
