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


def fail_stale_trials(study: optuna.Study, storage: optuna.storages.RDBStorage, grace_period: int) -> list[int]:
    """Mark RUNNING trials without a heartbeat for `grace_period` seconds FAIL, with the reason, and
    queue them again through the storage's stale-trial callback. Returns the numbers of the trials failed here.

    Several workers may find the same stale trial; only the one whose update succeeds queues it.
    """
    if storage.get_heartbeat_interval() is None:
        return []

    study_id = storage.get_study_id_from_name(study.study_name)
    failed: list[FrozenTrial] = []
    for trial_id in storage._get_stale_trial_ids(study_id):
        reason = (
            f"no heartbeat for more than {grace_period} s: its worker was killed, lost its machine "
            "or lost the database connection"
        )
        try:
            storage.set_trial_user_attr(trial_id, FAILURE_REASON, reason)
            if storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                failed.append(storage.get_trial(trial_id))
        except UpdateFinishedTrialError:
            continue  # another worker failed it first

    callback = storage.get_heartbeat_stale_trial_callback()
    for trial in failed:
        logger.warning("Trial %d marked FAIL: its worker sent no heartbeat for %d s", trial.number, grace_period)
        if callback is not None:
            callback(study, trial)
    return [trial.number for trial in failed]


def requeue_interrupted_trial(study: optuna.Study, storage: optuna.storages.RDBStorage, trial_id: int) -> None:
    """Queue again the parameters of a trial that this worker ended on a stop signal."""
    trial = storage.get_trial(trial_id)
    if trial.state != TrialState.FAIL:
        return

    callback = storage.get_heartbeat_stale_trial_callback()
    if callback is not None:
        callback(study, trial)
