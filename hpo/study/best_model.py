"""Export of a study's best trial, or a named one, as a model folder that `hpo predict` and MONAI run."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpo.data.preprocessing import PreprocessingSettings
from hpo.errors import StudyError
from hpo.export.bundle import ModelDescription, write_bundle
from hpo.models import NetworkSettings
from hpo.study.artifacts import fetch_checkpoint
from hpo.study.storage import mask_url

logger = logging.getLogger(__name__)

# Trial user attributes copied into the exported description.
METRIC_ATTRS = (
    "dice_per_structure", "hd95_per_structure", "best_epoch", "epochs_run",
    "mean_dice_per_epoch", "train_loss_per_epoch",
)


def select_trial(study: optuna.Study, number: int | None = None) -> FrozenTrial:
    """Return the trial numbered `number`, or the best completed trial when `number` is None.

    A pruned trial can be named explicitly: it kept the weights of its best epoch before it stopped.
    """
    if number is None:
        return _best_completed(study)

    trials = [trial for trial in study.get_trials(deepcopy=False) if trial.number == number]
    if not trials:
        msg = f"Study '{study.study_name}' has no trial {number}; 'hpo status' lists its trials."
        raise StudyError(msg)
    trial = trials[0]
    if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED) or "training_config" not in trial.user_attrs:
        msg = f"Trial {number} of study '{study.study_name}' is {trial.state.name}; only complete or pruned trials have a model to export."
        raise StudyError(msg)
    return trial


def _best_completed(study: optuna.Study) -> FrozenTrial:
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if completed:
        return max(completed, key=lambda trial: trial.value)

    pruned = [trial.number for trial in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))]
    msg = f"Study '{study.study_name}' has no completed trial yet, so there is no best model to export"
    if pruned:
        msg += f"; pruned trials {pruned} kept their best weights and can be exported with --trial N"
    raise StudyError(msg + ". Run 'hpo run' until a trial completes.")


def describe_trial(study: optuna.Study, trial: FrozenTrial, storage_url: str) -> ModelDescription:
    """Build the model description from the trial's training config and the study's recorded data settings."""
    # Trials record their own data settings; studies run by older versions have them only at study level.
    attrs = {**study.user_attrs, **{key: trial.user_attrs[key] for key in ("labels", "preprocessing", "channels") if key in trial.user_attrs}}
    missing = [key for key in ("labels", "preprocessing", "channels") if key not in attrs]
    if missing:
        msg = f"Study '{study.study_name}' does not record {missing}; run 'hpo run' with this version of hpo once to record them."
        raise StudyError(msg)

    config = trial.user_attrs["training_config"]
    source = {
        "study": {
            "name": study.study_name,
            "storage": mask_url(storage_url),
            **{key: attrs.get(key) for key in ("dataset", "layout", "training_cases", "validation_cases")},
        },
        "trial": {
            "number": trial.number,
            "state": trial.state.name,
            "value": trial.value,
            "params": trial.params,
            **{key: trial.user_attrs.get(key) for key in METRIC_ATTRS},
            "training_config": config,
        },
    }
    return ModelDescription(
        network=NetworkSettings.from_dict(config["network"]),
        preprocessing=PreprocessingSettings.from_dict(attrs["preprocessing"]),
        patch_size=tuple(config["patch_size"]),
        sw_overlap=float(config.get("sw_overlap", 0.25)),
        labels={int(value): name for value, name in attrs["labels"].items()},
        channels=tuple(attrs["channels"]),
        source=source,
    )


def export_trial(
    study: optuna.Study, storage_url: str, artifact_store, out: Path, number: int | None = None, overwrite: bool = False
) -> tuple[FrozenTrial, Path]:
    """Write the chosen trial's model folder to `out`; returns the trial and the folder."""
    trial = select_trial(study, number)
    description = describe_trial(study, trial, storage_url)
    with tempfile.TemporaryDirectory(prefix="hpo-export-") as scratch:
        weights = fetch_checkpoint(trial, artifact_store, Path(scratch) / "best_model.pt")
        folder = write_bundle(description, weights, Path(out), overwrite)
    logger.debug("Exported trial %d (%s, value %s) of study '%s'", trial.number, trial.state.name, trial.value, study.study_name)
    return trial, folder
