"""Several `hpo` workers on one real PostgreSQL study: exact budget, killed and stopped workers,
terminated connections, and no password in any output."""

from __future__ import annotations

import os
import signal
import time

import pytest
from optuna.trial import TrialState

from tests.study.conftest import load, start_hpo, states, wait_for_training_trial, worker_config

pytestmark = pytest.mark.postgres

PASSWORD = "pw-Secret-4711"


def with_password(url: str) -> str:
    # The test server trusts local connections, so any password is accepted and must stay hidden.
    return url.replace("postgres@", f"postgres:{PASSWORD}@", 1)


def test_two_workers_finish_exact_budget(tmp_path, hippocampus_dir, postgres_url):
    config = worker_config(tmp_path, hippocampus_dir, n_trials=4)
    process = start_hpo("-v", "run", str(config), "--workers", "2", "--storage", with_password(postgres_url))
    output, _ = process.communicate(timeout=240)

    assert process.returncode == 0, output
    study = load(postgres_url)
    assert states(study) == {"COMPLETE": 4}
    assert all(trial.user_attrs["worker"] for trial in study.trials)
    assert "[worker 0] " in output
    assert "[worker 1] " in output
    assert PASSWORD not in output
    assert "postgres:***@127.0.0.1" in output
    assert len({tuple(trial.params.items()) for trial in study.trials}) == 4, "workers must not sample the same parameters"


def test_sigkill_trial_retried(tmp_path, hippocampus_dir, postgres_url):
    config = worker_config(tmp_path, hippocampus_dir, n_trials=3, iterations=25, epochs=3)
    process = start_hpo("run", str(config), "--workers", "2", "--storage", postgres_url)
    victim = wait_for_training_trial(postgres_url, process)
    os.kill(int(victim.user_attrs["worker"].rsplit(":", 1)[1]), signal.SIGKILL)
    output, _ = process.communicate(timeout=240)

    assert process.returncode == 1, "a killed worker makes the launcher fail"
    assert "was killed by SIGKILL" in output
    study = load(postgres_url)
    killed = study.trials[victim.number]
    assert killed.state == TrialState.FAIL
    assert killed.user_attrs["failure_reason"].startswith("no heartbeat")
    retries = [trial for trial in study.trials if trial.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1
    assert retries[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert retries[0].params == victim.params
    counts = states(study)
    assert counts.get("COMPLETE", 0) + counts.get("PRUNED", 0) == 3
    assert "RUNNING" not in counts
    assert "WAITING" not in counts


def test_sigterm_stops_cleanly(tmp_path, hippocampus_dir, postgres_url):
    # Epochs of about half a second, so that the signal lands while trials train, not while they record.
    config = worker_config(tmp_path, hippocampus_dir, n_trials=6, iterations=150, epochs=4)
    process = start_hpo("run", str(config), "--workers", "2", "--storage", postgres_url)
    wait_for_training_trial(postgres_url, process)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)

    assert process.returncode == 130, output
    assert time.monotonic() - started < 30, "workers end their trials at once, not after training"
    assert "Traceback" not in output
    study = load(postgres_url)
    counts = states(study)
    assert "RUNNING" not in counts
    interrupted = [trial for trial in study.trials if "SIGTERM" in trial.user_attrs.get("failure_reason", "")]
    assert interrupted, output
    assert all(trial.state == TrialState.FAIL for trial in interrupted)
    queued = {trial.system_attrs.get("failed_trial") for trial in study.get_trials(states=(TrialState.WAITING,))}
    assert queued == {trial.number for trial in interrupted}, "interrupted parameters wait for the next run"


def test_terminated_backends_survived(tmp_path, hippocampus_dir, postgres_url, terminate_backends):
    config = worker_config(tmp_path, hippocampus_dir, n_trials=4, iterations=15, epochs=3)
    process = start_hpo("run", str(config), "--workers", "2", "--storage", postgres_url)
    wait_for_training_trial(postgres_url, process)
    terminated = 0
    for _ in range(10):
        terminated += terminate_backends(postgres_url)
        time.sleep(0.5)
    output, _ = process.communicate(timeout=240)

    assert terminated > 0
    assert process.returncode == 0, output
    counts = states(load(postgres_url))
    assert counts.get("COMPLETE", 0) + counts.get("PRUNED", 0) == 4
    assert "RUNNING" not in counts
