"""The guard a worker wraps around each trial of a shared study.

Before training, the guard records which worker runs the trial and ends a surplus trial (see
`hpo.study.budget`). During training, a stop signal may interrupt the trial (see
`hpo.study.interrupt`). A CUDA out-of-memory error ends only that trial: it is recorded as PRUNED
with `failure_reason` and the constraint `out_of_memory` = 1, so that TPE ranks those parameters
as infeasible and samples away from them. It is PRUNED rather than FAIL because Optuna's samplers
ignore FAIL trials, and it uses one trial of the budget, which also keeps a search space that never
fits in memory from running forever.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
from collections.abc import Callable

import optuna
import torch

from hpo.study.budget import SURPLUS, BudgetReached, TrialBudget
from hpo.study.interrupt import StopSignals, WorkerInterrupted
from hpo.study.recovery import FAILURE_REASON, RETRY_OF

logger = logging.getLogger(__name__)

WORKER = "worker"
OUT_OF_MEMORY = "out_of_memory"


def default_worker_name() -> str:
    """`HOST:PID`, unique among the workers of a study."""
    return f"{socket.gethostname()}:{os.getpid()}"


class TrialGuard:
    """Callable for `Study.optimize` that runs `objective` under the budget, stop and memory rules."""

    def __init__(
        self, objective: Callable[[optuna.Trial], float], budget: TrialBudget, stop: StopSignals, worker: str
    ) -> None:
        self.objective = objective
        self.budget = budget
        self.stop = stop
        self.worker = worker
        self.current_trial_id: int | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        self.current_trial_id = trial._trial_id
        trial.set_user_attr(WORKER, self.worker)
        if self.budget.is_surplus(trial.number):
            reason = f"{SURPLUS}: the budget of {self.budget.n_trials} finished trials was already taken by other workers"
            trial.set_user_attr(FAILURE_REASON, reason)
            logger.info("Trial %d not run: %s", trial.number, reason)
            raise BudgetReached(reason)

        retry_of = trial.user_attrs.get(RETRY_OF)
        if retry_of is not None:
            logger.info("Trial %d runs the parameters of trial %d again", trial.number, retry_of)
        if self.stop.received is not None:
            raise WorkerInterrupted(f"{self.stop.received} received before training began; the worker was stopped")
        try:
            return self.objective(trial)
        except torch.OutOfMemoryError as error:
            return self._end_out_of_memory(trial, error)

    def _end_out_of_memory(self, trial: optuna.Trial, error: torch.OutOfMemoryError) -> float:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        trial.set_user_attr(FAILURE_REASON, f"OutOfMemoryError: {first_line}")
        trial.set_constraint(OUT_OF_MEMORY, 1.0)
        del error
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        logger.warning("Trial %d ran out of GPU memory; its parameters are marked infeasible", trial.number)
        raise optuna.TrialPruned("out of memory")
