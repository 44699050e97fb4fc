"""The Optuna objective: sample a trial's settings, train, report every epoch, record the results."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import optuna
import torch

from hpo.config.schema import StudyConfig
from hpo.data.study_data import StudyData
from hpo.study.artifacts import open_artifact_store, upload_trial_artifacts
from hpo.study.progress import StudyClock, log_epoch
from hpo.study.search_space import build_training_config, sample_parameters
from hpo.training.trainer import EpochRecord, train

logger = logging.getLogger(__name__)


class OptunaReporter:
    """Reports each epoch's mean validation Dice to Optuna and relays the pruner's decision."""

    def __init__(self, trial: optuna.Trial, structure_names: list[str], clock: StudyClock, trials_left) -> None:
        self.trial = trial
        self.structure_names = structure_names
        self.clock = clock
        self.trials_left = trials_left
        self.epoch_seconds: list[float] = []

    def report(self, record: EpochRecord) -> None:
        self.trial.report(record.mean_dice, step=record.epoch)
        self.trial.set_user_attr("last_epoch", record.epoch)
        self.epoch_seconds.append(record.seconds)
        trial_left = (record.epochs - record.epoch) * sum(self.epoch_seconds) / len(self.epoch_seconds)
        study_left = self.clock.seconds_left(self.trials_left(), trial_left)
        log_epoch(self.trial.number, record, self.structure_names, trial_left, study_left)

    def should_stop(self) -> bool:
        return self.trial.should_prune()


class Objective:
    """Callable for `Study.optimize`: returns the best epoch's mean validation Dice of one trial."""

    def __init__(
        self, config: StudyConfig, data: StudyData, study_dir: Path, clock: StudyClock, trials_left,
        training_window: Callable[[], AbstractContextManager] = nullcontext,
    ) -> None:
        self.config = config
        self.data = data
        self.study_dir = Path(study_dir)
        self.clock = clock
        self.trials_left = trials_left
        # A stop signal may interrupt training only, never a storage write or an artifact upload.
        self.training_window = training_window
        self.artifact_store = open_artifact_store(config.study.artifact_store, self.study_dir)

    def __call__(self, trial: optuna.Trial) -> float:
        started = time.monotonic()
        parameters = sample_parameters(trial, self.config)
        # NOTE: the folder depends on the study name and trial number only, so two storages holding a
        # study of the same name and sharing one output_dir write their checkpoints to the same folders.
        output_dir = self.study_dir / "trials" / f"trial_{trial.number:04d}"
        training_config = build_training_config(
            parameters, self.config, self.data.in_channels, self.data.num_classes, output_dir
        )
        trial.set_user_attr("training_config", training_config.to_dict())
        # Each trial keeps its own data settings, so exporting it stays right if a later run changes them.
        description = self.data.describe()
        for key in ("labels", "channels", "preprocessing"):
            trial.set_user_attr(key, description[key])
        shown = ", ".join(f"{name}={_short(value)}" for name, value in trial.params.items())
        logger.info("Trial %d started: %s", trial.number, shown)

        structure_names = list(self.data.info.structure_names.values())
        reporter = OptunaReporter(trial, structure_names, self.clock, self.trials_left)
        try:
            with self.training_window():
                result = train(training_config, self.data, reporter)
        except torch.OutOfMemoryError:
            raise  # TrialGuard ends the trial as pruned and logs why
        except Exception as error:
            trial.set_user_attr("failure_reason", f"{type(error).__name__}: {error}")
            logger.warning("Trial %d failed: %s: %s", trial.number, type(error).__name__, error)
            raise
        finally:
            self.clock.finish_trial(time.monotonic() - started)

        record_result(trial, result, structure_names, time.monotonic() - started)
        upload_trial_artifacts(trial, self.artifact_store, result, self.data, output_dir)
        if result.stopped_early:
            logger.info("Trial %d pruned after epoch %d (best mean Dice %.3f)", trial.number, result.epochs_run, result.best_dice)
            raise optuna.TrialPruned(f"pruned after epoch {result.epochs_run}")
        logger.info(
            "Trial %d finished: best mean Dice %.3f at epoch %d/%d in %.0f s",
            trial.number, result.best_dice, result.best_epoch, result.epochs_run, time.monotonic() - started,
        )
        return result.best_dice


def record_result(trial: optuna.Trial, result, structure_names: list[str], seconds: float) -> None:
    """Store the trial's scores, timings and checkpoint location as user attributes."""
    trial.set_user_attr("dice_per_structure", dict(zip(structure_names, result.best_dice_per_structure)))
    if result.best_hausdorff95_per_structure:
        trial.set_user_attr("hd95_per_structure", dict(zip(structure_names, result.best_hausdorff95_per_structure)))
    trial.set_user_attr("best_mean_dice", result.best_dice)
    trial.set_user_attr("best_epoch", result.best_epoch)
    trial.set_user_attr("epochs_run", result.epochs_run)
    trial.set_user_attr("train_loss_per_epoch", result.train_losses)
    trial.set_user_attr("mean_dice_per_epoch", result.mean_dices)
    trial.set_user_attr("seconds_total", round(seconds, 2))
    trial.set_user_attr("seconds_training", round(result.seconds_training, 2))
    trial.set_user_attr("seconds_validation", round(result.seconds_validation, 2))
    if result.checkpoint is not None:
        trial.set_user_attr("checkpoint", str(result.checkpoint))


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
