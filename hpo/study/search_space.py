"""Sample, then apply: turn an Optuna trial into a frozen `TrainingConfig`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from hpo.config.schema import ParamSpec, StudyConfig
from hpo.models.settings import NetworkSettings
from hpo.training.config import TrainingConfig

# Values of the optional hyperparameters when the search space leaves them out.
DEFAULTS: dict[str, Any] = {
    "weight_decay": 1e-5,
    "foreground_ratio": 0.67,
    "loss": "dice_ce",
    "architecture": "unet",
    "deep_supervision": False,
}
INTEGER_PARAMETERS = ("epochs", "batch_size")


def suggest(trial: optuna.Trial, name: str, spec: ParamSpec) -> Any:
    """Sample one hyperparameter from its spec: a fixed value, a categorical choice or a range."""
    if spec.value is not None:
        return spec.value
    if spec.choices is not None:
        return trial.suggest_categorical(name, spec.choices)
    if name in INTEGER_PARAMETERS:
        step = int(spec.step) if spec.step else 1
        return trial.suggest_int(name, int(spec.low), int(spec.high), step=step, log=spec.log)
    return trial.suggest_float(name, spec.low, spec.high, log=spec.log, step=spec.step)


def sample_parameters(trial: optuna.Trial, config: StudyConfig) -> dict[str, Any]:
    """Return all hyperparameters of one trial: searched ones sampled, the others at their defaults."""
    values = dict(DEFAULTS, dropout=config.model.dropout)
    for name in type(config.search_space).model_fields:
        spec = getattr(config.search_space, name)
        if spec is not None:
            values[name] = suggest(trial, name, spec)
    return values


def build_training_config(
    parameters: dict[str, Any], config: StudyConfig, in_channels: int, num_classes: int, output_dir: Path | None
) -> TrainingConfig:
    """Apply sampled parameters and the config's fixed settings to get one trial's `TrainingConfig`."""
    network = NetworkSettings(
        architecture=str(parameters["architecture"]),
        spatial_dims=config.model.spatial_dims,
        in_channels=in_channels,
        out_channels=num_classes,
        channels=tuple(config.model.channels),
        num_res_units=config.model.num_res_units,
        dropout=float(parameters["dropout"]),
        # MONAI's UNet and AttentionUnet have no deep-supervision heads, so the flag applies to DynUNet only.
        deep_supervision=bool(parameters["deep_supervision"]) and parameters["architecture"] == "dynunet",
    )
    return TrainingConfig(
        network=network,
        patch_size=tuple(config.model.patch_size),
        learning_rate=float(parameters["learning_rate"]),
        epochs=int(parameters["epochs"]),
        batch_size=int(parameters["batch_size"]),
        weight_decay=float(parameters["weight_decay"]),
        foreground_ratio=float(parameters["foreground_ratio"]),
        loss=str(parameters["loss"]),
        iterations_per_epoch=config.training.iterations_per_epoch,
        seed=config.training.seed,
        device=config.training.device,
        amp=config.training.amp,
        num_workers=config.training.num_workers,
        sw_overlap=config.training.sw_overlap,
        output_dir=output_dir,
    )


def max_epochs(config: StudyConfig) -> int:
    """Return the largest epoch count the search space allows: the pruners' maximum resource."""
    spec = config.search_space.epochs
    if spec.value is not None:
        return int(spec.value)
    if spec.choices is not None:
        return int(max(spec.choices))
    return int(spec.high)
