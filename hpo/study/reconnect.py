"""An Optuna RDB storage that survives a lost database connection.

A PostgreSQL restart or a terminated backend (`pg_terminate_backend`) breaks the connection that
a storage call is using. SQLAlchemy then invalidates the connection, Optuna wraps the driver's
error in `StorageInternalError`, and the worker would stop. `ReconnectingRDBStorage` retries such
calls with growing pauses, each on a fresh connection from the pool, until
`RECONNECT_WINDOW_SECONDS` have passed. Errors in the data itself (a duplicate key, a finished
trial) are raised at once as before.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from sqlalchemy import exc as sqlalchemy_errors

from hpo.errors import StorageError

logger = logging.getLogger(__name__)

RECONNECT_WINDOW_SECONDS = 60.0
FIRST_PAUSE_SECONDS = 0.5
MAX_PAUSE_SECONDS = 8.0

# Methods of RDBStorage (public ones and the private ones that Optuna's cache layer calls) whose
# database work is retried. Each reads, or writes in one transaction that is rolled back on error.
# NOTE: a write whose commit reached the server just before the connection dropped is done twice
# when retried. For `set_trial_state_values` that is detected; for `create_new_trial` it leaves an
# extra RUNNING trial without heartbeats, which stays RUNNING.
RETRIED_METHODS = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
    "get_study_id_from_name", "get_study_name_from_id", "get_study_directions", "get_study_user_attrs",
    "get_study_system_attrs", "get_all_studies", "get_trial_user_attrs", "get_trial_system_attrs",
    "create_new_trial", "_create_new_trial", "set_trial_param", "_set_trial_param", "get_trial_param",
    "set_trial_state_values", "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr",
    "get_trial_id_from_study_id_trial_number", "get_trial", "get_all_trials", "_get_trials", "get_best_trial",
    "_get_best_trial_id", "record_heartbeat", "_get_stale_trial_ids", "get_running_trial_ids_without_heartbeat",
)


def is_connection_error(error: BaseException) -> bool:
    """Return whether `error`, or an error that caused it, means the database connection was lost or busy.

    SQLAlchemy reports a dropped connection, a server shutting down and SQLite's "database is
    locked" as `OperationalError`; `connection_invalidated` marks the disconnects it recognised.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (sqlalchemy_errors.OperationalError, sqlalchemy_errors.InterfaceError)):
            return True
        if isinstance(current, sqlalchemy_errors.DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__ or current.__context__
    return False


class ReconnectingRDBStorage(optuna.storages.RDBStorage):
    """`RDBStorage` whose calls are retried on a new connection when the old one was lost."""

    def get_running_trial_ids_without_heartbeat(self, study_id: int) -> list[int]:
        """Return the RUNNING trials of the study that never recorded a heartbeat.

        Optuna's stale check skips them, but a worker killed between creating a trial and its
        first heartbeat leaves such a trial RUNNING for good.
        """
        from optuna.storages._rdb import models  # NOTE: Optuna's private table models (checked with 5.1)

        session = self.scoped_session()
        try:
            rows = (
                session.query(models.TrialModel.trial_id)
                .outerjoin(models.TrialHeartbeatModel, models.TrialHeartbeatModel.trial_id == models.TrialModel.trial_id)
                .filter(models.TrialModel.study_id == study_id)
                .filter(models.TrialModel.state == optuna.trial.TrialState.RUNNING)
                .filter(models.TrialHeartbeatModel.trial_heartbeat_id.is_(None))
                .all()
            )
        finally:
            session.close()
        return [row[0] for row in rows]


# Storage methods call one another; only the outermost call of each thread retries.
_inside_call = threading.local()


def _retrying(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: ReconnectingRDBStorage, *args: Any, **kwargs: Any) -> Any:
        if getattr(_inside_call, "active", False):
            return method(self, *args, **kwargs)

        _inside_call.active = True
        try:
            return _call_with_retries(self, name, method, args, kwargs)
        finally:
            _inside_call.active = False

    return call


def _call_with_retries(storage: ReconnectingRDBStorage, name: str, method, args, kwargs) -> Any:
    deadline = time.monotonic() + RECONNECT_WINDOW_SECONDS
    pause = FIRST_PAUSE_SECONDS
    attempt = 1
    while True:
        try:
            return method(storage, *args, **kwargs)
        except UpdateFinishedTrialError:
            if attempt > 1 and name == "set_trial_state_values" and _already_set(storage, args, kwargs):
                return True  # the lost attempt had committed before its connection dropped
            raise
        except Exception as error:
            if not is_connection_error(error):
                raise
            if time.monotonic() + pause > deadline:
                msg = (
                    f"Lost the connection to the study storage and could not reconnect within "
                    f"{RECONNECT_WINDOW_SECONDS:.0f} s ({name}): {_first_line(error)}"
                )
                raise StorageError(msg) from error
            logger.warning(
                "Storage connection lost during %s (%s); reconnecting in %.1f s, attempt %d",
                name, _first_line(error), pause, attempt,
            )
            storage.scoped_session.remove()
            time.sleep(pause * (0.5 + random.random()))
            pause = min(pause * 2, MAX_PAUSE_SECONDS)
            attempt += 1


def _already_set(storage: ReconnectingRDBStorage, args: tuple, kwargs: dict) -> bool:
    trial_id = kwargs.get("trial_id", args[0] if args else None)
    state = kwargs.get("state", args[1] if len(args) > 1 else None)
    if trial_id is None or state is None:
        return False
    return storage.get_trial(trial_id).state == state


def _first_line(error: BaseException) -> str:
    root = error.__cause__ or error
    text = str(root).strip()
    return text.splitlines()[0] if text else type(root).__name__


for _name in RETRIED_METHODS:
    setattr(ReconnectingRDBStorage, _name, _retrying(_name, getattr(ReconnectingRDBStorage, _name)))
