"""Fixtures for the distributed-study tests: a fresh PostgreSQL database per test, worker configs,
and helpers that run `hpo` in subprocesses and read the study back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from tests.conftest import tiny_study_dict, write_config

REPOSITORY = Path(__file__).resolve().parents[2]
POSTGRES_URL = os.environ.get("HPO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def admin_connection():
    """An autocommit connection to the server's maintenance database."""
    import psycopg

    url = make_url(POSTGRES_URL)
    return psycopg.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password,
        dbname=url.database or "postgres", autocommit=True, connect_timeout=5,
    )


@pytest.fixture
def postgres_url() -> str:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    try:
        admin = admin_connection()
    except Exception as error:
        pytest.skip(f"PostgreSQL not reachable at {make_url(POSTGRES_URL).render_as_string(hide_password=True)}: {error}")
    name = f"hpo_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def terminate_backends():
    """A function that ends every connection to a database with `pg_terminate_backend`; returns how many."""
    admin = admin_connection()

    def terminate(url: str) -> int:
        database = make_url(url).database
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
        return len(rows)

    yield terminate
    admin.close()


def worker_config(tmp_path: Path, data: Path, n_trials: int = 4, iterations: int = 3, epochs: int = 2, **overrides) -> Path:
    """A tiny study for several workers: short trials, a 1 s heartbeat and a 3 s grace period."""
    config = tiny_study_dict(data, tmp_path / "runs")
    config["study"].update(heartbeat_interval=1, grace_period=3)
    config["data"].update(max_cases=4, validation_fraction=0.25)
    config["search_space"]["epochs"] = {"value": epochs}
    config["pruner"] = {"name": "none"}
    config["budget"] = {"n_trials": n_trials}
    config["training"].update(iterations_per_epoch=iterations)
    for section, values in overrides.items():
        config.setdefault(section, {}).update(values)
    return write_config(tmp_path / "workers.yaml", config)


_started: list[subprocess.Popen] = []


def start_hpo(*arguments: str, environment: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `hpo ARGUMENTS...` with its output (stdout and stderr together) captured as text.
    The process is stopped after the test if it still runs."""
    process = subprocess.Popen(
        [sys.executable, "-m", "hpo.cli.main", *arguments], cwd=REPOSITORY, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, env={**os.environ, **(environment or {})},
    )
    _started.append(process)
    return process


@pytest.fixture(autouse=True)
def _stop_started_processes():
    yield
    while _started:
        process = _started.pop()
        if process.poll() is None:
            process.terminate()
            try:
                process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


def load(url: str, name: str = "tiny") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url)


def states(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts


def wait_for_training_trial(url: str, process: subprocess.Popen, timeout: float = 180.0) -> optuna.trial.FrozenTrial:
    """Poll the study until a RUNNING trial has reported an epoch, i.e. is in the middle of training."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"hpo exited early:\n{process.stdout.read()}"
        try:
            running = load(url).get_trials(states=(optuna.trial.TrialState.RUNNING,))
        except (KeyError, SQLAlchemyError):  # the study, its tables or the SQLite file's folder are not created yet
            running = []
        for trial in running:
            if trial.intermediate_values and "worker" in trial.user_attrs:
                return trial
        time.sleep(0.3)
    raise AssertionError(f"no trial was training after {timeout} s")
