"""The worker loop: open or create the study, then run trials until the study-wide budget is spent."""

from __future__ import annotations

import json
import logging
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from hpo.config.loader import study_dir
from hpo.config.schema import StudyConfig
from hpo.data.study_data import load_study_data
from hpo.errors import ConfigError, StudyError
from hpo.study.budget import FINISHED_STATES, TrialBudget  # FINISHED_STATES is re-exported for count_trials callers
from hpo.study.factories import build_pruner, build_sampler
from hpo.study.interrupt import StopSignals
from hpo.study.objective import Objective
from hpo.study.progress import StudyClock
from hpo.study.search_space import max_epochs
from hpo.study.storage import mask_url, open_storage, resolve_storage_url, sqlite_path
from hpo.study.trial_guard import TrialGuard, default_worker_name
from hpo.study.worker_loop import WorkerLoop

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudyHandle:
    """An opened study with its storage URL and output folder."""

    study: optuna.Study
    storage_url: str
    study_dir: Path
    storage: optuna.storages.RDBStorage | None = None


OBJECTIVE_NAME = "mean validation Dice"


def open_study(config: StudyConfig, storage: str | None = None, create: bool = True) -> StudyHandle:
    """Open the study in its storage, creating it if needed (and allowed); safe when many workers race."""
    folder = study_dir(config)
    url = resolve_storage_url(storage, config.study.storage, folder)
    sqlite_file = sqlite_path(url)
    if not create and sqlite_file is not None and not sqlite_file.is_file():
        msg = f"Study '{config.study.name}' not found: {sqlite_file} does not exist; run 'hpo run' first or check --storage."
        raise StudyError(msg)
    backend = open_storage(
        url, config.study.heartbeat_interval, config.study.grace_period, config.training.max_retries
    )
    sampler = build_sampler(config.sampler)
    pruner = build_pruner(config.pruner, max_epochs(config))
    if not create:
        try:
            study = optuna.load_study(study_name=config.study.name, storage=backend, sampler=sampler, pruner=pruner)
        except KeyError as error:
            msg = f"Study '{config.study.name}' not found in {mask_url(url)}; run 'hpo run' first or check --storage."
            raise StudyError(msg) from error
        return StudyHandle(study, url, folder, backend)

    study = optuna.create_study(
        storage=backend, sampler=sampler, pruner=pruner, study_name=config.study.name,
        direction="maximize", load_if_exists=True,
    )
    _name_objective(study)
    return StudyHandle(study, url, folder, backend)


def _name_objective(study: optuna.Study) -> None:
    """Name the objective, so the dashboard labels it "mean validation Dice" instead of "Objective 0"."""
    if study.metric_names == [OBJECTIVE_NAME]:
        return

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # experimental in Optuna 5.1
        study.set_metric_names([OBJECTIVE_NAME])


def count_trials(study: optuna.Study, states: tuple[TrialState, ...]) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def run_worker(
    config: StudyConfig, storage: str | None = None, n_trials: int | None = None, timeout: float | None = None,
    worker: str | None = None, seed_per_worker: bool = False,
) -> optuna.Study:
    """Run trials one after another until `n_trials` finished trials exist in the study (counted over
    every worker and earlier run) or `timeout` seconds of this run have passed.

    Several workers may run this on one study at once (see `hpo.study.worker_loop`). On SIGINT or
    SIGTERM the running trial ends as FAIL, its parameters are queued again, and `StopRequested`
    (a `KeyboardInterrupt`) is raised. `worker` names this worker on its trials (default `HOST:PID`).
    With `seed_per_worker`, the sampler's seed is mixed with the worker's name, so that workers
    sharing one config do not sample the same parameters.
    """
    n_trials = n_trials if n_trials is not None else config.budget.n_trials
    timeout = timeout if timeout is not None else config.budget.timeout
    # The data is checked before the study is opened, so a broken dataset leaves no study behind.
    data = load_study_data(config.data, config.model.spatial_dims)
    handle = open_study(config, storage)
    study = handle.study
    budget = TrialBudget(study, n_trials)
    worker = worker or default_worker_name()
    check_search_space(study, config)
    seed = sampler_seed(config.sampler.seed, worker if seed_per_worker else None, len(study.trials))
    if seed != config.sampler.seed:
        study.sampler = build_sampler(config.sampler.model_copy(update={"seed": seed}))
    logger.info(
        "Worker %s started on study '%s' in %s: %d trials finished, budget %s",
        worker, study.study_name, mask_url(handle.storage_url),
        budget.finished(), f"{n_trials} trials" if n_trials else f"{timeout:.0f} s",
    )

    _record_study_attributes(study, data.describe())
    clock = StudyClock(n_trials, timeout)
    with StopSignals() as stop:
        objective = Objective(config, data, handle.study_dir, clock, budget.trials_left, stop.trial_window)
        guard = TrialGuard(objective, budget, stop, worker)
        WorkerLoop(study, handle.storage, budget, guard, stop, config.study.grace_period, timeout).run()
    return study


def sampler_seed(seed: int | None, worker: str | None, n_existing_trials: int) -> int | None:
    """Return the sampler seed for this process: the config's seed for a new study in one process.

    The seed is mixed with the worker's name (so parallel workers differ) and with the number of
    trials already in the study (so a resumed run does not draw the first run's random samples again).
    """
    if seed is None:
        return None
    if worker is not None:
        seed += zlib.crc32(worker.encode())
    return (seed + 7919 * n_existing_trials) % 2**32


def check_search_space(study: optuna.Study, config: StudyConfig) -> None:
    """Raise a ConfigError when the config's choices differ from those of the study's earlier trials.

    Optuna cannot change a categorical parameter's choices within a study; ranges may change.
    """
    recorded: dict[str, optuna.distributions.BaseDistribution] = {}
    for trial in study.get_trials(deepcopy=False):
        recorded.update(trial.distributions)
    for name in type(config.search_space).model_fields:
        spec = getattr(config.search_space, name)
        earlier = recorded.get(name)
        if spec is None or spec.choices is None or not isinstance(earlier, optuna.distributions.CategoricalDistribution):
            continue
        if tuple(spec.choices) != tuple(earlier.choices):
            msg = (
                f"search_space.{name}.choices {list(spec.choices)} differ from {list(earlier.choices)} used by the "
                f"trials already in study '{study.study_name}', and Optuna cannot change a parameter's choices within "
                "a study. Restore the earlier choices, or set a new study.name to start a new study."
            )
            raise ConfigError(msg)


# Keys whose values must agree between workers; the dataset path may differ from machine to machine.
SHARED_DATA_KEYS = ("labels", "channels", "training_cases", "validation_cases", "preprocessing")


def _record_study_attributes(study: optuna.Study, description: dict) -> None:
    """Record the data description once, and warn when this worker's data differ from the study's."""
    recorded = study.user_attrs
    for key, value in description.items():
        if key not in recorded:
            study.set_user_attr(key, value)
        elif key in SHARED_DATA_KEYS and recorded[key] != json.loads(json.dumps(value)):  # stored as JSON: tuples become lists
            logger.warning(
                "This worker's %s differ from those recorded in study '%s'; its trials are not comparable "
                "with the others. Use the same config and dataset on every worker.",
                key, study.study_name,
            )
