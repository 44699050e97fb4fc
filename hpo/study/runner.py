"""The worker loop: open or create the study, then run trials until the study-wide budget is spent."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from hpo.config.loader import study_dir
from hpo.config.schema import StudyConfig
from hpo.data.study_data import load_study_data
from hpo.study.factories import build_pruner, build_sampler
from hpo.study.objective import Objective
from hpo.study.progress import StudyClock
from hpo.study.search_space import max_epochs
from hpo.study.storage import mask_url, open_storage, resolve_storage_url
from hpo.training.trainer import NonFiniteLossError

logger = logging.getLogger(__name__)

# States that use up the budget. Failed trials do not, so a crash costs no trial.
FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
# Errors that end one trial but not the worker; anything else (a bad config, broken data) stops it.
TRIAL_ERRORS = (NonFiniteLossError,)


@dataclass(frozen=True)
class StudyHandle:
    """An opened study with its storage URL and output folder."""

    study: optuna.Study
    storage_url: str
    study_dir: Path


def open_study(config: StudyConfig, storage: str | None = None, create: bool = True) -> StudyHandle:
    """Open the study in its storage, creating it if needed (and allowed); safe when many workers race."""
    folder = study_dir(config)
    url = resolve_storage_url(storage, config.study.storage, folder)
    backend = open_storage(
        url, config.study.heartbeat_interval, config.study.grace_period, config.training.max_retries
    )
    sampler = build_sampler(config.sampler)
    pruner = build_pruner(config.pruner, max_epochs(config))
    if not create:
        try:
            study = optuna.load_study(study_name=config.study.name, storage=backend, sampler=sampler, pruner=pruner)
        except KeyError as error:
            from hpo.errors import StudyError

            msg = f"Study '{config.study.name}' not found in {mask_url(url)}; run 'hpo run' first or check --storage."
            raise StudyError(msg) from error
        return StudyHandle(study, url, folder)

    study = optuna.create_study(
        storage=backend, sampler=sampler, pruner=pruner, study_name=config.study.name,
        direction="maximize", load_if_exists=True,
    )
    return StudyHandle(study, url, folder)


def count_trials(study: optuna.Study, states: tuple[TrialState, ...]) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def run_worker(
    config: StudyConfig, storage: str | None = None, n_trials: int | None = None, timeout: float | None = None
) -> optuna.Study:
    """Run trials one after another until `n_trials` finished trials exist in the study (counted over
    every worker and earlier run) or `timeout` seconds of this run have passed."""
    n_trials = n_trials if n_trials is not None else config.budget.n_trials
    timeout = timeout if timeout is not None else config.budget.timeout
    # The data is checked before the study is opened, so a broken dataset leaves no study behind.
    data = load_study_data(config.data, config.model.spatial_dims)
    handle = open_study(config, storage)
    study = handle.study
    finished = count_trials(study, FINISHED_STATES)
    logger.info(
        "Study '%s' %s in %s: %d trials finished, budget %s",
        study.study_name, "resumed" if study.trials else "created", mask_url(handle.storage_url), finished,
        f"{n_trials} trials" if n_trials else f"{timeout:.0f} s",
    )

    _record_study_attributes(study, data.describe())

    def trials_left() -> int | None:
        if n_trials is None:
            return None
        return max(0, n_trials - count_trials(study, (*FINISHED_STATES, TrialState.RUNNING)))

    clock = StudyClock(n_trials, timeout)
    objective = Objective(config, data, handle.study_dir, clock, trials_left)
    started = time.monotonic()
    while True:
        if n_trials is not None and trials_left() <= 0:
            break
        if timeout is not None and time.monotonic() - started >= timeout:
            logger.info("Timeout of %.0f s reached; stopping after the current trial", timeout)
            break
        study.optimize(objective, n_trials=1, catch=TRIAL_ERRORS, gc_after_trial=True)
    return study


def _record_study_attributes(study: optuna.Study, description: dict) -> None:
    for key, value in description.items():
        if study.user_attrs.get(key) != value:
            study.set_user_attr(key, value)
