"""Study storage: URL precedence, masking, clear errors for unreachable databases, concurrent
creation, SQLite under several writers and a dashboard, and reconnection after a lost connection."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from hpo.errors import StorageError
from hpo.study.storage import mask_url, open_storage, resolve_storage_url
from tests.study.conftest import REPOSITORY, admin_connection


@pytest.mark.parametrize(
    ("flag", "environment", "configured", "expected"),
    [
        ("sqlite:///flag.db", "sqlite:///env.db", "sqlite:///config.db", "sqlite:///flag.db"),  # the flag wins
        (None, "sqlite:///env.db", "sqlite:///config.db", "sqlite:///env.db"),  # then HPO_STORAGE
        (None, None, "sqlite:///config.db", "sqlite:///config.db"),  # then the config
        (None, None, None, "sqlite:///STUDY/study.db"),  # then SQLite in the study folder
        ("", "", None, "sqlite:///STUDY/study.db"),  # empty values count as unset
    ],
)
def test_storage_url_precedence(monkeypatch, tmp_path, flag, environment, configured, expected):
    if environment is None:
        monkeypatch.delenv("HPO_STORAGE", raising=False)
    else:
        monkeypatch.setenv("HPO_STORAGE", environment)
    url = resolve_storage_url(flag, configured, tmp_path)
    assert url == expected.replace("STUDY", str(tmp_path))


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql+psycopg://hpo:secret@db:5432/hpo", "postgresql+psycopg://hpo:***@db:5432/hpo"),
        ("postgresql+psycopg://hpo@db/hpo", "postgresql+psycopg://hpo@db/hpo"),  # no password to hide
        ("postgresql+psycopg://hpo:p%40ss@db/hpo", "postgresql+psycopg://hpo:***@db/hpo"),  # an escaped '@'
        ("sqlite:////tmp/study.db", "sqlite:////tmp/study.db"),
        ("not a url", "<unparsable storage URL>"),
    ],
)
def test_mask_url(url, masked):
    assert mask_url(url) == masked


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_refused_connection_names_server(monkeypatch):
    port = closed_port()
    started = time.monotonic()
    with pytest.raises(StorageError, match=rf"database 'studies' on 127\.0\.0\.1:{port}") as raised:
        open_storage(f"postgresql+psycopg://hpo:topsecret@127.0.0.1:{port}/studies")

    assert time.monotonic() - started < 10
    assert "topsecret" not in str(raised.value)
    assert "hpo:***@127.0.0.1" in str(raised.value)


def test_silent_server_times_out():
    # A server that accepts the TCP connection but never responds, like a firewall that drops packets.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(StorageError, match=rf"127\.0\.0\.1:{port}"):
            open_storage(f"postgresql+psycopg://hpo:topsecret@127.0.0.1:{port}/studies")
        elapsed = time.monotonic() - started

    assert elapsed < 15, f"gave up after {elapsed:.1f} s"


@pytest.mark.postgres
def test_missing_database_named(postgres_url):
    url = postgres_url.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(StorageError, match=r"database 'no_such_database' on 127\.0\.0\.1:5432.*does not exist"):
        open_storage(url)


def test_sqlite_uses_write_ahead_log(tmp_path):
    path = tmp_path / "deep" / "study.db"
    open_storage(f"sqlite:///{path}")

    import sqlite3

    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


CREATE_STUDY = """
import sys, time
import optuna
from hpo.study.storage import open_storage
url, start = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
storage = open_storage(url, heartbeat_interval=1, grace_period=3)
study = optuna.create_study(storage=storage, study_name="race", direction="maximize", load_if_exists=True)
print(study._study_id)
"""


def run_at_once(script: str, arguments_per_process: list[list[str]], timeout: float = 120) -> list[subprocess.CompletedProcess]:
    """Run `python -c SCRIPT ARGUMENTS` in several processes that start their real work together."""
    start = str(time.time() + 4.0)  # after every interpreter has imported optuna
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, *arguments, start], cwd=REPOSITORY, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        for arguments in arguments_per_process
    ]
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return results


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_four_workers_create_one_study(backend, tmp_path, request):
    url = f"sqlite:///{tmp_path / 'race.db'}" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    results = run_at_once(CREATE_STUDY, [[url]] * 4)

    for result in results:
        assert result.returncode == 0, result.stderr
    assert len({result.stdout.strip() for result in results}) == 1
    assert optuna.get_all_study_names(url) == ["race"]


WRITER = """
import sys, time
import optuna
from hpo.study.storage import open_storage
url, n_trials, start = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
optuna.logging.set_verbosity(optuna.logging.WARNING)
storage = open_storage(url, heartbeat_interval=1, grace_period=3)
study = optuna.load_study(study_name="load", storage=storage)
time.sleep(max(0.0, start - time.time()))

def objective(trial):
    x = trial.suggest_float("x", -1.0, 1.0)
    for step in range(5):
        trial.report(x * step, step)
        trial.set_user_attr(f"note_{step}", "w" * 200)
    return x * x

study.optimize(objective, n_trials=n_trials)
"""


def free_port() -> int:
    return closed_port()


def test_sqlite_many_writers_and_dashboard(tmp_path):
    url = f"sqlite:///{tmp_path / 'load.db'}"
    optuna.create_study(storage=open_storage(url), study_name="load")
    port = free_port()
    dashboard = subprocess.Popen(
        [str(Path(sys.executable).with_name("optuna-dashboard")), url, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    reads: list[int] = []
    errors: list[str] = []
    done = threading.Event()

    def read_continuously() -> None:
        while not done.is_set():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/1?after=0", timeout=30) as response:
                    reads.append(len(json.load(response)["trials"]))
            except (ConnectionError, OSError) as error:
                if reads:  # before the first response the server may still be starting
                    errors.append(repr(error))
                time.sleep(0.2)

    reader = threading.Thread(target=read_continuously)
    reader.start()
    try:
        results = run_at_once(WRITER, [[url, "15"]] * 4)
    finally:
        done.set()
        reader.join()
        dashboard.terminate()
        dashboard.wait(timeout=10)

    for result in results:
        assert result.returncode == 0, result.stderr
        assert "locked" not in result.stderr
    study = optuna.load_study(study_name="load", storage=url)
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 60
    assert errors == []
    assert len(reads) >= 5, "the dashboard answered during the load"


@pytest.mark.postgres
def test_lost_connection_retried(postgres_url):
    storage = open_storage(postgres_url, heartbeat_interval=1, grace_period=3)
    study = optuna.create_study(storage=storage, study_name="lost")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)

    import psycopg

    # Hold a lock that the next read waits for, terminate the waiting connection, then let go:
    # the read fails mid-query and must be retried on a new connection.
    database = postgres_url.rsplit("/", 1)[1]
    with admin_connection() as admin, psycopg.connect(postgres_url.replace("postgresql+psycopg", "postgresql")) as blocker:
        blocker.execute("LOCK TABLE trials IN ACCESS EXCLUSIVE MODE")
        result: list = []
        reader = threading.Thread(target=lambda: result.append(storage.get_all_trials(study._study_id)))
        reader.start()
        time.sleep(1.0)
        terminated = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            (database,),
        ).fetchall()
        blocker.rollback()
    reader.join(timeout=60)

    assert len(terminated) == 1, "the read was waiting for the lock"
    assert len(result) == 1, "the read was retried and returned"
    assert len(result[0]) == 2
