"""Trials whose worker died or was stopped: mark them FAIL with a reason and queue their parameters again.

A worker that is killed (SIGKILL, a lost machine) stops sending heartbeats. Once a trial's last
heartbeat is older than `study.grace_period`, any live worker marks it FAIL and queues a WAITING
copy with the same parameters, which the next free worker runs. A worker stopped with SIGTERM or
Ctrl-C ends its trial itself and queues the copy the same way. A trial is queued again at most
`training.max_retries` times, counted over its whole chain of copies.
"""

from __future__ import annotations

import copy
import logging
import time

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

logger = logging.getLogger(__name__)

FAILURE_REASON = "failure_reason"
RETRY_OF = "retry_of"


class RetryStaleTrialCallback(optuna.storages.RetryHeartbeatStaleTrialCallback):
    """Optuna's retry callback, but the copy starts clean: it keeps the parameters and the retry
    history, and drops the user attributes of the failed run (its scores, its failure reason)."""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        history = list(trial.system_attrs.get("retry_history", []))
        if self._max_retry is not None and len(history) + 1 > self._max_retry:
            logger.warning(
                "Trial %d is not queued again: its parameters already ran %d times (training.max_retries is %d)",
                trial.number, len(history) + 1, self._max_retry,
            )
            return

        cleared = copy.deepcopy(trial)
        cleared.user_attrs = {RETRY_OF: trial.number}
        super().__call__(study, cleared)
        logger.info("Trial %d's parameters are queued to run again", trial.number)


class StaleTrialCheck:
    """Marks FAIL, with the reason, the RUNNING trials whose worker stopped sending heartbeats, and
    queues them again through the storage's stale-trial callback.

    A trial counts as stale when its last heartbeat is older than `grace_period` seconds (Optuna's
    rule) or, if it never sent one, when this check has seen it without a heartbeat for
    `grace_period` seconds. The second rule uses this process's clock only, because trial start
    times come from the clocks of other machines.
    """

    def __init__(self, study: optuna.Study, storage: optuna.storages.RDBStorage, grace_period: int) -> None:
        self.study = study
        self.storage = storage
        self.grace_period = grace_period
        self.study_id = storage.get_study_id_from_name(study.study_name)
        self._first_seen_without_heartbeat: dict[int, float] = {}

    def run(self) -> list[int]:
        """Fail and queue again every stale trial; returns the numbers of the trials failed here.

        Several workers may find the same stale trial, and only the one whose update succeeds queues it.
        """
        if self.storage.get_heartbeat_interval() is None:
            return []

        stale = set(self.storage._get_stale_trial_ids(self.study_id)) | set(self._stale_without_heartbeat())
        failed = [trial for trial in map(self._fail, sorted(stale)) if trial is not None]
        callback = self.storage.get_heartbeat_stale_trial_callback()
        for trial in failed:
            logger.warning("Trial %d marked FAIL: its worker sent no heartbeat for %d s", trial.number, self.grace_period)
            if callback is not None:
                callback(self.study, trial)
        return [trial.number for trial in failed]

    def _stale_without_heartbeat(self) -> list[int]:
        get_ids = getattr(self.storage, "get_running_trial_ids_without_heartbeat", None)
        if get_ids is None:
            return []

        now = time.monotonic()
        current = set(get_ids(self.study_id))
        seen = {trial_id: self._first_seen_without_heartbeat.get(trial_id, now) for trial_id in current}
        self._first_seen_without_heartbeat = seen
        return [trial_id for trial_id, since in seen.items() if now - since > self.grace_period]

    def _fail(self, trial_id: int) -> FrozenTrial | None:
        reason = (
            f"no heartbeat for more than {self.grace_period} s: its worker was killed, lost its machine "
            "or lost the database connection"
        )
        try:
            self.storage.set_trial_user_attr(trial_id, FAILURE_REASON, reason)
            if self.storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                return self.storage.get_trial(trial_id)
        except UpdateFinishedTrialError:
            pass  # another worker failed it first
        return None


def requeue_interrupted_trial(study: optuna.Study, storage: optuna.storages.RDBStorage, trial_id: int) -> None:
    """Queue again the parameters of a trial that this worker ended on a stop signal."""
    trial = storage.get_trial(trial_id)
    if trial.state != TrialState.FAIL:
        return

    callback = storage.get_heartbeat_stale_trial_callback()
    if callback is not None:
        callback(study, trial)
