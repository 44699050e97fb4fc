"""One worker's loop over a shared study: recover stale trials, start a trial while the budget has
room, wait while other workers' trials may still fail, stop on a signal, a timeout or the budget."""

from __future__ import annotations

import logging
import time

import optuna
from optuna.trial import TrialState

from hpo.errors import HpoError, StudyError
from hpo.study.budget import SURPLUS, BudgetReached, TrialBudget
from hpo.study.interrupt import StopRequested, StopSignals, WorkerInterrupted
from hpo.study.recovery import FAILURE_REASON, StaleTrialCheck, requeue_interrupted_trial
from hpo.study.trial_guard import TrialGuard
from hpo.training.trainer import NonFiniteLossError

logger = logging.getLogger(__name__)

# Errors that end one trial but not the worker; anything else (a bad config, broken data) stops it.
TRIAL_ERRORS = (NonFiniteLossError, BudgetReached)
# A worker whose trials fail this many times in a row stops: the cause is rarely the parameters.
MAX_CONSECUTIVE_FAILURES = 10


class _HandledFailureFilter(logging.Filter):
    """Drops Optuna's two warnings (the second one being "... failed with value None.") about a
    failed trial whose error hpo has already logged in one line, so that no traceback is shown
    for a diverged, surplus or interrupted trial."""

    def __init__(self) -> None:
        super().__init__()
        self._drop_next = False

    def filter(self, record: logging.LogRecord) -> bool:
        if self._drop_next and "failed with value" in record.getMessage():
            self._drop_next = False
            return False
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, (*TRIAL_ERRORS, WorkerInterrupted)):
            self._drop_next = True
            return False
        return True


logging.getLogger("optuna.study._optimize").addFilter(_HandledFailureFilter())


class WorkerLoop:
    """Runs trials of `study` through `guard` until the budget is reached, the timeout passes or a
    stop signal arrives."""

    def __init__(
        self, study: optuna.Study, storage: optuna.storages.RDBStorage, budget: TrialBudget, guard: TrialGuard,
        stop: StopSignals, grace_period: int, timeout: float | None,
    ) -> None:
        self.study = study
        self.storage = storage
        self.budget = budget
        self.guard = guard
        self.stop = stop
        self.grace_period = grace_period
        self.timeout = timeout
        self.poll_seconds = float(max(1, min(5, storage.get_heartbeat_interval() or 5)))
        self.failures: list[str] = []
        self.stale_check = StaleTrialCheck(study, storage, grace_period)

    def run(self) -> None:
        started = time.monotonic()
        waiting = False
        while True:
            if self.stop.received:
                raise StopRequested(self.stop.received)
            self.stale_check.run()
            if self.budget.reached():
                logger.info("Budget of %d finished trials reached; worker %s stops", self.budget.n_trials, self.guard.worker)
                return
            if self.timeout is not None and time.monotonic() - started >= self.timeout:
                logger.info("Timeout of %.0f s reached; worker %s stops", self.timeout, self.guard.worker)
                return
            if not self.budget.has_room():
                if not waiting:
                    self._log_waiting()
                waiting = True
                self.stop.wait(self.poll_seconds)
                continue

            waiting = False
            self._run_one_trial()

    def _run_one_trial(self) -> None:
        self.guard.current_trial_id = None
        try:
            self.study.optimize(self.guard, n_trials=1, catch=TRIAL_ERRORS, gc_after_trial=True)
        except WorkerInterrupted:
            if self.guard.current_trial_id is not None:
                requeue_interrupted_trial(self.study, self.storage, self.guard.current_trial_id)
            raise StopRequested(self.stop.received) from None
        except (HpoError, KeyboardInterrupt):
            raise
        except Exception:
            if not self._failed_by_another_worker():
                raise
            return

        self._count_failure()

    def _failed_by_another_worker(self) -> bool:
        """Return whether the trial that just raised had been marked FAIL by another worker's heartbeat
        check, which happens when this worker could not reach the database for longer than the grace period."""
        if self.guard.current_trial_id is None:
            return False

        trial = self.storage.get_trial(self.guard.current_trial_id)
        if trial.state != TrialState.FAIL or not str(trial.user_attrs.get(FAILURE_REASON, "")).startswith("no heartbeat"):
            return False

        logger.warning(
            "Trial %d was marked FAIL by another worker while it ran here (no heartbeat for %d s); "
            "its result is dropped and its parameters run again", trial.number, self.grace_period,
        )
        return True

    def _count_failure(self) -> None:
        if self.guard.current_trial_id is None:
            return

        trial = self.storage.get_trial(self.guard.current_trial_id)
        reason = str(trial.user_attrs.get(FAILURE_REASON, ""))
        if trial.state != TrialState.FAIL or reason.startswith(SURPLUS):
            self.failures.clear()
            return

        self.failures.append(f"trial {trial.number}: {reason}")
        if len(self.failures) >= MAX_CONSECUTIVE_FAILURES:
            listed = "\n".join(f"  - {line}" for line in self.failures)
            msg = (
                f"The last {len(self.failures)} trials of this worker failed, so it stops; the cause is likely "
                f"the search space (a learning rate range too high?) or the environment, not single parameters:\n{listed}"
            )
            raise StudyError(msg)

    def _log_waiting(self) -> None:
        running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        numbers = ", ".join(str(trial.number) for trial in running)
        logger.info(
            "Worker %s waits: the budget of %d trials is taken by finished trials and running trial(s) %s "
            "of other workers; it starts another if one of them fails",
            self.guard.worker, self.budget.n_trials, numbers or "(none)",
        )
