"""Workers without a database server: the launcher's process handling, the study-wide budget,
trial guards (surplus, out of memory, diverged) and `hpo run --workers` on the embedded SQLite."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from hpo.cli.main import main
from hpo.errors import ConfigError, StudyError
from hpo.study.budget import TrialBudget
from hpo.study.interrupt import StopSignals
from hpo.study.launcher import Supervisor, WorkerSpec, plan_workers, visible_gpus
from hpo.study.recovery import StaleTrialCheck
from hpo.study.storage import open_storage
from hpo.study.trial_guard import TrialGuard
from hpo.study.worker_loop import MAX_CONSECUTIVE_FAILURES, WorkerLoop
from hpo.training.trainer import NonFiniteLossError
from tests.conftest import write_decathlon
from tests.study.conftest import REPOSITORY, start_hpo, wait_for_training_trial, worker_config


def python_worker(index: int, code: str) -> WorkerSpec:
    return WorkerSpec(index, [sys.executable, "-c", code], {}, None)


def test_fatal_worker_stops_others(capsys):
    sleeper = python_worker(0, "import time; print('sleeping', flush=True); time.sleep(120)")
    broken = python_worker(1, "import sys, time; time.sleep(1); print('error: data.path not found', file=sys.stderr); sys.exit(2)")
    started = time.monotonic()
    status = Supervisor([sleeper, broken]).run()

    assert status == 2
    assert time.monotonic() - started < 20, "the sleeping worker was stopped, not waited for"
    captured = capsys.readouterr()
    assert "[worker 1] error: data.path not found" in captured.err
    assert "[worker 0] sleeping" in captured.out


def test_killed_worker_leaves_others_running():
    steady = python_worker(0, "import time; time.sleep(3)")
    killed = python_worker(1, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    supervisor = Supervisor([steady, killed])
    status = supervisor.run()

    assert status == 1
    assert [worker.status for worker in supervisor.running] == [0, -9]


def test_plan_pins_gpus_round_robin():
    specs = plan_workers("study.yaml", 5, ["0", "3"], "postgresql+psycopg://hpo:secret@db/hpo", n_trials=7)

    assert [spec.gpu for spec in specs] == ["0", "3", "0", "3", "0"]
    assert [spec.environment["CUDA_VISIBLE_DEVICES"] for spec in specs] == ["0", "3", "0", "3", "0"]
    for spec in specs:
        assert spec.environment["HPO_STORAGE"] == "postgresql+psycopg://hpo:secret@db/hpo"
        assert not any("secret" in part for part in spec.command), "ps would show the password"
        assert spec.command[spec.command.index("--n-trials") + 1] == "7"
        assert int(spec.command[spec.command.index("--threads") + 1]) >= 1


def test_plan_rejects_zero_workers():
    with pytest.raises(ConfigError, match="--workers must be at least 1 but got 0"):
        plan_workers("study.yaml", 0, [], "sqlite:///s.db")


@pytest.mark.parametrize(
    ("requested", "device", "environment", "expected"),
    [
        ("0,2", "auto", None, ["0", "2"]),  # --gpus wins
        (" 1 , 3 ", "cpu", None, ["1", "3"]),  # even with training.device cpu, as asked
        (None, "cpu", "0,1", []),  # CPU training pins nothing
        (None, "auto", "2,5", ["2", "5"]),  # the GPUs this process may see
        (None, "auto", "-1", []),  # CUDA's way of hiding every GPU
    ],
)
def test_visible_gpus(monkeypatch, requested, device, environment, expected):
    if environment is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", environment)
    assert visible_gpus(requested, device) == expected


def test_empty_gpu_list_rejected():
    with pytest.raises(ConfigError, match="--gpus must list GPU ids"):
        visible_gpus(" , ", "auto")


def sqlite_study(
    tmp_path: Path, name: str = "guarded", heartbeat: bool = True
) -> tuple[optuna.Study, optuna.storages.RDBStorage]:
    beats = {"heartbeat_interval": 1, "grace_period": 3} if heartbeat else {}
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}", **beats)
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
    return study, storage


def test_surplus_trial_ranked_after_budget(tmp_path):
    study, _ = sqlite_study(tmp_path, heartbeat=False)
    study.tell(study.ask(), 0.5)
    first, second = study.ask(), study.ask()  # two workers started together with one trial left
    budget = TrialBudget(study, n_trials=2)

    assert not budget.is_surplus(first.number)
    assert budget.is_surplus(second.number)
    assert not budget.has_room()
    study.tell(first, state=TrialState.FAIL)
    assert not budget.is_surplus(second.number), "a failed trial frees its place"


def test_waiting_trial_keeps_its_place(tmp_path):
    study, _ = sqlite_study(tmp_path, heartbeat=False)
    study.enqueue_trial({"x": 0.5})  # a retried trial, numbered 0
    newer = study.ask()  # ask() takes the queued trial first ...
    later = study.ask()  # ... so this one is new
    budget = TrialBudget(study, n_trials=1)

    assert newer.number == 0
    assert budget.is_surplus(later.number)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_trial_without_heartbeat_failed(tmp_path):
    study, storage = sqlite_study(tmp_path)
    study.enqueue_trial({"x": 0.25})
    orphan = study.ask()  # as if its worker died before the first heartbeat
    orphan.suggest_float("x", 0.0, 1.0)
    check = StaleTrialCheck(study, storage, grace_period=1)

    assert check.run() == [], "first seen now"
    time.sleep(1.2)
    assert check.run() == [orphan.number]
    failed = study.trials[orphan.number]
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs["failure_reason"].startswith("no heartbeat for more than 1 s")
    copies = study.get_trials(states=(TrialState.WAITING,))
    assert [copy.params for copy in copies] == [{"x": 0.25}]
    assert copies[0].system_attrs["failed_trial"] == orphan.number


def guarded_loop(study, storage, objective, n_trials: int) -> tuple[TrialGuard, WorkerLoop]:
    stop = StopSignals()
    budget = TrialBudget(study, n_trials)
    guard = TrialGuard(objective, budget, stop, "test:1")
    return guard, WorkerLoop(study, storage, budget, guard, stop, grace_period=3, timeout=None)


def test_out_of_memory_marks_params_infeasible(tmp_path):
    study, storage = sqlite_study(tmp_path)

    def objective(trial):
        size = trial.suggest_int("batch_size", 1, 64)
        if size > 0:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return 1.0

    _, loop = guarded_loop(study, storage, objective, n_trials=2)
    loop.run()

    trials = study.trials
    assert [trial.state for trial in trials] == [TrialState.PRUNED, TrialState.PRUNED]
    for trial in trials:
        assert trial.user_attrs["failure_reason"].startswith("OutOfMemoryError: CUDA out of memory")
        assert trial.constraints == {"out_of_memory": 1.0}
        assert trial.user_attrs["worker"] == "test:1"


def test_diverged_trials_do_not_use_budget(tmp_path):
    study, storage = sqlite_study(tmp_path)
    calls = []

    def objective(trial):
        calls.append(trial.number)
        trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
        if len(calls) in (2, 3):
            trial.set_user_attr("failure_reason", "NonFiniteLossError: training loss is nan")
            raise NonFiniteLossError("training loss is nan at step 1")
        return 0.5

    _, loop = guarded_loop(study, storage, objective, n_trials=3)
    loop.run()

    counts = [trial.state for trial in study.trials]
    assert counts.count(TrialState.COMPLETE) == 3
    assert counts.count(TrialState.FAIL) == 2


def test_repeated_failures_stop_worker(tmp_path):
    study, storage = sqlite_study(tmp_path)

    def objective(trial):
        trial.set_user_attr("failure_reason", "NonFiniteLossError: training loss is inf")
        raise NonFiniteLossError("training loss is inf")

    _, loop = guarded_loop(study, storage, objective, n_trials=3)
    with pytest.raises(StudyError, match=f"The last {MAX_CONSECUTIVE_FAILURES} trials of this worker failed"):
        loop.run()
    assert len(study.trials) == MAX_CONSECUTIVE_FAILURES


def test_broken_dataset_starts_no_worker(tmp_path, capsys):
    data = write_decathlon(tmp_path / "data", n_cases=4)
    next((data / "labelsTr").iterdir()).unlink()
    config = worker_config(tmp_path, data)

    assert main(["run", str(config), "--workers", "2"]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("error: Dataset") == 1
    assert "Worker 0 started" not in captured.err
    assert not (tmp_path / "runs" / "tiny" / "study.db").exists()


def test_unreachable_storage_clear_error(tmp_path, hippocampus_dir, capsys):
    config = worker_config(tmp_path, hippocampus_dir)
    started = time.monotonic()
    status = main(["worker", str(config), "--storage", "postgresql+psycopg://hpo:hunter2@127.0.0.1:1/studies"])

    assert status == 2
    assert time.monotonic() - started < 15
    error = capsys.readouterr().err
    assert "error: Could not open study storage postgresql+psycopg://hpo:***@127.0.0.1:1/studies" in error
    assert "database 'studies' on 127.0.0.1:1" in error
    assert "hunter2" not in error
    assert "Traceback" not in error


def test_run_workers_on_embedded_sqlite(tmp_path, hippocampus_dir):
    config = worker_config(tmp_path, hippocampus_dir, n_trials=3)
    finished = subprocess.run(
        [sys.executable, "-m", "hpo.cli.main", "run", str(config), "--workers", "2"],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=300,
    )

    assert finished.returncode == 0, finished.stderr
    assert "[worker 0] " in finished.stderr
    assert "[worker 1] " in finished.stderr
    assert "COMPLETE 3" in finished.stdout
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'runs' / 'tiny' / 'study.db'}")
    assert [trial.state for trial in study.trials].count(TrialState.COMPLETE) == 3
    cache = tmp_path / "runs" / "cache"
    assert len(list(cache.glob("*.npz"))) == 4, "one cache entry per case, built once"
    assert not list(cache.glob(".*")), "no half-written entry is left"


def test_ctrl_c_requeues_trial(tmp_path, hippocampus_dir):
    # Epochs of about half a second, so that the signal lands while the trial trains, not while it records.
    config = worker_config(tmp_path, hippocampus_dir, n_trials=3, iterations=150, epochs=4)
    url = f"sqlite:///{tmp_path / 'runs' / 'tiny' / 'study.db'}"
    process = start_hpo("worker", str(config))
    trial = wait_for_training_trial(url, process)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)

    assert process.returncode == 130, output
    assert "Traceback" not in output
    study = optuna.load_study(study_name="tiny", storage=url)
    stopped = study.trials[trial.number]
    assert stopped.state == TrialState.FAIL
    assert "SIGINT received while training" in stopped.user_attrs["failure_reason"]
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert [copy.params for copy in waiting] == [stopped.params]
    assert study.get_trials(states=(TrialState.RUNNING,)) == []
