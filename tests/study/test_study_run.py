"""Short real studies on hippocampus MRI: trials complete, resume, reproduce and get pruned."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpo.config import parse_config
from hpo.config.loader import resolve_paths
from hpo.errors import ConfigError
from hpo.study.runner import open_study, run_worker
from hpo.study.summary import format_summary, summarise
from tests.conftest import tiny_study_dict


def tiny_config(tmp_path: Path, data_path: Path, **overrides):
    return resolve_paths(parse_config(tiny_study_dict(data_path, tmp_path / "runs", **overrides)), tmp_path)


def test_short_study_records_dice(tmp_path, hippocampus_dir):
    study = run_worker(tiny_config(tmp_path, hippocampus_dir))

    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 2
    for trial in trials:
        assert set(trial.user_attrs["dice_per_structure"]) == {"Anterior", "Posterior"}
        assert 0.0 <= trial.value <= 1.0
        assert trial.value == pytest.approx(sum(trial.user_attrs["dice_per_structure"].values()) / 2)
        assert Path(trial.user_attrs["checkpoint"]).is_file()
        assert len(trial.intermediate_values) == 2, "one report per epoch"
        assert trial.user_attrs["training_config"]["learning_rate"] == trial.params["learning_rate"]
        assert trial.user_attrs["preprocessing"]["orientation"] == "RAS"
        assert trial.user_attrs["labels"]["1"] == "Anterior"
    assert (tmp_path / "runs" / "tiny" / "study.db").is_file(), "the embedded default lives beside the outputs"
    assert study.user_attrs["labels"] == {"0": "background", "1": "Anterior", "2": "Posterior"}


def test_resume_adds_to_study(tmp_path, hippocampus_dir):
    config = tiny_config(tmp_path, hippocampus_dir)
    run_worker(config, n_trials=1)
    run_worker(config, n_trials=3)
    study = run_worker(config, n_trials=3)  # the budget is already spent: no new trial

    assert [trial.number for trial in study.trials] == [0, 1, 2]
    assert len(optuna.get_all_study_names(open_study(config).storage_url)) == 1


def test_same_seed_same_first_trial(tmp_path, hippocampus_dir):
    first = run_worker(tiny_config(tmp_path / "a", hippocampus_dir), n_trials=1)
    second = run_worker(tiny_config(tmp_path / "b", hippocampus_dir), n_trials=1)
    assert first.trials[0].params == second.trials[0].params


def test_pruner_stops_useless_learning_rate(tmp_path, hippocampus_dir):
    config = tiny_config(
        tmp_path, hippocampus_dir,
        search_space={"learning_rate": {"low": 1e-7, "high": 1e-2, "log": True}, "epochs": {"value": 4}, "batch_size": {"value": 4}},
        pruner={"name": "median", "n_startup_trials": 1, "n_warmup_steps": 2},
        training={"device": "cpu", "iterations_per_epoch": 8, "seed": 0},
    )
    study = open_study(config).study
    study.enqueue_trial({"learning_rate": 1e-2})
    study.enqueue_trial({"learning_rate": 1e-7})  # far too small to move the weights in four epochs
    study = run_worker(config, n_trials=2)

    useful, useless = study.trials
    assert useful.state == TrialState.COMPLETE
    assert useless.state == TrialState.PRUNED
    assert useless.user_attrs["epochs_run"] == 2, "steps are epochs trained, and the pruner may act from step n_warmup_steps on"
    assert useless.intermediate_values[2] < useful.intermediate_values[2]


def test_summary_json_shape(tmp_path, hippocampus_dir):
    study = run_worker(tiny_config(tmp_path, hippocampus_dir), n_trials=1)
    summary = summarise(study)
    assert summary["study_name"] == "tiny"
    assert summary["n_trials_by_state"] == {"COMPLETE": 1, "PRUNED": 0, "FAIL": 0, "RUNNING": 0, "WAITING": 0}
    assert set(summary["best_trial"]) == {"number", "value", "params", "user_attrs"}
    assert summary["trials"][0]["state"] == "COMPLETE"

    text = format_summary(summary)
    assert "Study tiny: 1 trials (COMPLETE 1, PRUNED 0, FAIL 0, RUNNING 0, WAITING 0)" in text
    assert "  Dice Anterior" in text
    assert "best epoch" in text
    assert str(study.best_trial.user_attrs["checkpoint"]) in text


def test_changed_split_warns_and_keeps_record(tmp_path, hippocampus_dir, caplog):
    run_worker(tiny_config(tmp_path, hippocampus_dir), n_trials=1)
    first = open_study(tiny_config(tmp_path, hippocampus_dir)).study.user_attrs["validation_cases"]

    with caplog.at_level("WARNING", logger="hpo.study.runner"):
        run_worker(tiny_config(tmp_path, hippocampus_dir), n_trials=2)
    assert "differ from those recorded" not in caplog.text, "the same config must not warn"

    changed = tiny_config(tmp_path, hippocampus_dir, data={"split_seed": 5})
    with caplog.at_level("WARNING", logger="hpo.study.runner"):
        study = run_worker(changed, n_trials=3)
    assert "validation_cases differ from those recorded in study 'tiny'" in caplog.text
    assert study.user_attrs["validation_cases"] == first


def test_resumed_run_samples_new_parameters(tmp_path, hippocampus_dir):
    config = tiny_config(tmp_path, hippocampus_dir)
    run_worker(config, n_trials=1)
    study = run_worker(config, n_trials=2)
    assert study.trials[1].params != study.trials[0].params, "a resumed run must not redraw the first random sample"


def test_changed_choices_rejected_before_training(tmp_path, hippocampus_dir):
    run_worker(tiny_config(tmp_path, hippocampus_dir), n_trials=1)
    changed = tiny_config(tmp_path, hippocampus_dir, search_space={"batch_size": {"choices": [2, 8]}})
    with pytest.raises(ConfigError, match=r"search_space\.batch_size\.choices \[2, 8\] differ from \[2, 4\] used by the trials already in study 'tiny'"):
        run_worker(changed, n_trials=2)
    assert len(open_study(changed).study.trials) == 1, "no trial may be started with the changed choices"
