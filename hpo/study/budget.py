"""The study-wide trial budget, shared by every worker of a study.

`budget.n_trials` counts finished trials (COMPLETE and PRUNED) of all workers and earlier runs;
FAIL trials do not use it. Two checks keep N workers from finishing more than the budget:

- before starting a trial, a worker starts one only while finished plus RUNNING trials are below
  the budget, and otherwise waits, because a RUNNING trial of another worker may still fail;
- when a trial has started, it ranks itself: it goes ahead only if the finished trials plus the
  RUNNING and WAITING trials numbered below it leave room. Trial numbers are handed out one at a
  time under a lock on the study row, so of several trials that pass the first check together,
  only those within the budget go ahead. The others end as FAIL, marked as surplus, and do not count.
"""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
SURPLUS = "surplus"


class BudgetReached(Exception):
    """This trial started after the budget was taken by finished and earlier running trials."""


class TrialBudget:
    """`n_trials` finished trials over the whole study; None means no trial limit (a timeout only)."""

    def __init__(self, study: optuna.Study, n_trials: int | None) -> None:
        self.study = study
        self.n_trials = n_trials

    def count(self, *states: TrialState) -> int:
        return len(self.study.get_trials(deepcopy=False, states=states))

    def finished(self) -> int:
        return self.count(*FINISHED_STATES)

    def reached(self) -> bool:
        return self.n_trials is not None and self.finished() >= self.n_trials

    def has_room(self) -> bool:
        """Return whether another trial may start now, because finished and RUNNING trials leave part of the budget."""
        if self.n_trials is None:
            return True

        return self.count(*FINISHED_STATES, TrialState.RUNNING) < self.n_trials

    def trials_left(self) -> int | None:
        """Trials not yet finished or running, for time estimates."""
        if self.n_trials is None:
            return None

        return max(0, self.n_trials - self.count(*FINISHED_STATES, TrialState.RUNNING))

    def is_surplus(self, trial_number: int) -> bool:
        """Return whether the running trial `trial_number` falls beyond the budget (see the module docstring)."""
        if self.n_trials is None:
            return False

        trials = self.study.get_trials(
            deepcopy=False, states=(*FINISHED_STATES, TrialState.RUNNING, TrialState.WAITING)
        )
        ahead = sum(
            1 for trial in trials
            if trial.state in FINISHED_STATES or trial.number < trial_number
        )
        return ahead >= self.n_trials
