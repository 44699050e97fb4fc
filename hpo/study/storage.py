"""Study storage: choosing the URL, masking its password, and opening it with sane engine settings.

The embedded default is a SQLite file in write-ahead-log mode with a long busy timeout, so several
local workers and an optuna-dashboard can share it. PostgreSQL goes through SQLAlchemy and
psycopg 3 with a small, pre-pinged connection pool.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import time
import warnings
from pathlib import Path

import optuna
from sqlalchemy import exc as sqlalchemy_errors
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from hpo.errors import StorageError
from hpo.study.reconnect import ReconnectingRDBStorage
from hpo.study.recovery import RetryStaleTrialCallback

logger = logging.getLogger(__name__)

STORAGE_ENVIRONMENT_VARIABLE = "HPO_STORAGE"
SQLITE_BUSY_TIMEOUT_SECONDS = 60
CONNECT_TIMEOUT_SECONDS = 10
# Workers that open a new database at the same moment all create its tables, so the losers of
# that race see "already exists" errors. They try again for up to this many seconds, and so does a
# worker whose new connection was closed by the server (a restart, `pg_terminate_backend`).
OPEN_RETRY_SECONDS = 10.0
# Parts of the messages of those errors, lower case. A server that refuses the connection or
# never responds is not among them, and that error is raised at once.
TRANSIENT_OPEN_ERRORS = (
    "already exists", "database is locked", "terminating connection", "server closed the connection",
)


def resolve_storage_url(flag: str | None, configured: str | None, study_dir: Path) -> str:
    """Pick the storage URL: the `--storage` flag, then `HPO_STORAGE`, then the config, then a SQLite file in the study folder."""
    for candidate in (flag, os.environ.get(STORAGE_ENVIRONMENT_VARIABLE), configured):
        if candidate:
            return candidate
    return f"sqlite:///{Path(study_dir) / 'study.db'}"


def sqlite_path(url: str) -> Path | None:
    """Return the database file of a SQLite URL, or None for other URLs and in-memory SQLite."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def mask_url(url: str) -> str:
    """Return the URL with its password replaced by ***, safe to print and log."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparsable storage URL>"


def open_storage(
    url: str, heartbeat_interval: int | None = None, grace_period: int | None = None, max_retries: int = 1
) -> ReconnectingRDBStorage:
    """Open an Optuna RDB storage, creating a SQLite file's folder and WAL mode as needed.

    With `heartbeat_interval`, a trial whose worker stops beating for `grace_period` seconds is
    marked FAIL and queued again, at most `max_retries` times. Calls made later survive a lost
    connection (see `hpo.study.reconnect`); an unreachable server raises `StorageError` within
    about `CONNECT_TIMEOUT_SECONDS`.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as error:
        msg = f"Storage URL {mask_url(url)} is not a valid SQLAlchemy URL, such as sqlite:///study.db or postgresql+psycopg://user:password@host:5432/db."
        raise StorageError(msg) from error

    engine_kwargs = _engine_kwargs(parsed.get_backend_name())
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        _prepare_sqlite_file(Path(parsed.database))
    heartbeat = {}
    with warnings.catch_warnings():
        # Heartbeats and their retry callback are marked experimental in Optuna 5.1; hpo relies on them knowingly.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if heartbeat_interval:
            heartbeat = {
                "heartbeat_interval": heartbeat_interval,
                "grace_period": grace_period,
                "heartbeat_stale_trial_callback": RetryStaleTrialCallback(max_retry=max_retries),
            }
        return _create_storage(url, engine_kwargs, heartbeat)


def _create_storage(url: str, engine_kwargs: dict, heartbeat: dict) -> ReconnectingRDBStorage:
    deadline = time.monotonic() + OPEN_RETRY_SECONDS
    while True:
        try:
            return ReconnectingRDBStorage(url, engine_kwargs=engine_kwargs, **heartbeat)
        except Exception as error:  # SQLAlchemy and the drivers raise many types for an unreachable server
            if time.monotonic() > deadline or not _is_transient_open_error(error):
                raise StorageError(describe_connection_failure(url, error)) from error
            logger.debug("Opening %s failed (%s); trying again", mask_url(url), _first_line(error))
            time.sleep(0.2 + random.random() * 0.5)


def _is_transient_open_error(error: Exception) -> bool:
    """Return whether `error` came from tables or rows that another process created a moment earlier, or
    from a connection that the server closed after accepting it."""
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, (sqlalchemy_errors.IntegrityError, sqlalchemy_errors.ProgrammingError)):
            return True
        text = str(current).lower()
        if any(part in text for part in TRANSIENT_OPEN_ERRORS):
            return True
        current = current.__cause__
    return False


def describe_connection_failure(url: str, error: Exception) -> str:
    """Build a message naming the host, port and database that could not be used, without the password."""
    parsed = make_url(url)
    where = f"database '{parsed.database}'"
    if parsed.host:
        where += f" on {parsed.host}:{parsed.port or 'default port'}"
    return (
        f"Could not open study storage {mask_url(url)} ({where}): {_first_line(error)}. "
        "Check that the server is running and reachable, and the user, password and database name; "
        f"or pass another URL with --storage or {STORAGE_ENVIRONMENT_VARIABLE}."
    )


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _engine_kwargs(backend: str) -> dict:
    if backend == "sqlite":
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}}
    if backend == "postgresql":
        return {
            "pool_pre_ping": True,
            "pool_size": 2,
            "max_overflow": 2,
            "pool_recycle": 1800,
            "connect_args": {"connect_timeout": CONNECT_TIMEOUT_SECONDS},
        }
    return {"pool_pre_ping": True}


def _prepare_sqlite_file(path: Path) -> None:
    """Create the folder and switch the file to write-ahead logging, which lets readers and one writer work at once.

    Switching the journal mode needs the file to itself, and SQLite reports "database is locked"
    at once, without waiting for the busy timeout, while other processes create the same study.
    The switch is therefore retried for up to the busy timeout.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_SECONDS
    while True:
        try:
            with sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_SECONDS) as connection:
                mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
                if mode.lower() != "wal":
                    connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05 + random.random() * 0.1)
