"""The epoch loop of one trial: patches in, validation Dice out after every epoch, best weights kept.

The trainer does not import Optuna. It takes a frozen `TrainingConfig`, the study's data and a
`Reporter`. After each epoch it hands the reporter an `EpochRecord`, and it stops when the
reporter's `should_stop` returns True.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader

from hpo.data.sampling import PatchDataset
from hpo.data.study_data import StudyData
from hpo.errors import ConfigError
from hpo.models import build_loss, build_network
from hpo.training.checkpoint import save_weights
from hpo.training.config import TrainingConfig
from hpo.training.inference import autocast, validate
from hpo.training.metrics import hausdorff95_per_structure

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "best_model.pt"


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite: the trial diverged."""


@dataclass(frozen=True)
class EpochRecord:
    """The results of one epoch."""

    epoch: int  # 1-based
    epochs: int
    train_loss: float
    dice: list[float]
    mean_dice: float
    seconds: float
    improved: bool


@dataclass
class TrainingResult:
    """A finished or stopped training run: the best epoch's scores and where its weights are."""

    best_dice: float = -math.inf
    best_epoch: int = 0
    best_dice_per_structure: list[float] = field(default_factory=list)
    best_hausdorff95_per_structure: list[float] | None = None
    train_losses: list[float] = field(default_factory=list)
    mean_dices: list[float] = field(default_factory=list)
    epochs_run: int = 0
    stopped_early: bool = False
    checkpoint: Path | None = None
    seconds_training: float = 0.0
    seconds_validation: float = 0.0
    best_predictions: list[np.ndarray] = field(default_factory=list, repr=False)


class Reporter(Protocol):
    """The trainer's only link to the outside: one record per epoch, then a question."""

    def report(self, record: EpochRecord) -> None: ...

    def should_stop(self) -> bool: ...


class NullReporter:
    """A reporter that never stops training."""

    def report(self, record: EpochRecord) -> None:
        del record

    def should_stop(self) -> bool:
        return False


def resolve_device(requested: str) -> torch.device:
    """Return the torch device for `requested`: `auto` picks CUDA when a GPU is visible, else the CPU."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was requested but no CUDA GPU is visible; use 'auto' or 'cpu'")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def train(config: TrainingConfig, data: StudyData, reporter: Reporter | None = None) -> TrainingResult:
    """Train a network with `config` on `data`, validating after every epoch."""
    reporter = reporter or NullReporter()
    device = resolve_device(config.device)
    use_amp = config.amp == "on" or (config.amp == "auto" and device.type == "cuda")
    torch.manual_seed(config.seed)

    model = build_network(config.network).to(device)
    loss_function = build_loss(config.loss, config.network.deep_supervision)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=config.epochs, power=0.9)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and device.type == "cuda")
    dataset = PatchDataset(
        data.training, config.patch_size, config.foreground_ratio,
        config.iterations_per_epoch * config.batch_size, config.seed,
    )
    loader = DataLoader(
        dataset, batch_size=config.batch_size, shuffle=False, num_workers=config.num_workers,
        pin_memory=device.type == "cuda", persistent_workers=config.num_workers > 0,
    )

    result = TrainingResult()
    for epoch in range(1, config.epochs + 1):
        dataset.set_epoch(epoch)
        started = time.monotonic()
        train_loss = _train_epoch(model, loader, loss_function, optimizer, scaler, device, use_amp)
        scheduler.step()
        trained = time.monotonic()
        scores, predictions = validate(
            model, data.validation, data.num_classes, config.patch_size, device, config.sw_overlap, use_amp,
            data.structure_values,
        )
        finished = time.monotonic()

        result.epochs_run = epoch
        result.train_losses.append(train_loss)
        result.mean_dices.append(scores.mean_dice)
        result.seconds_training += trained - started
        result.seconds_validation += finished - trained
        improved = scores.mean_dice > result.best_dice
        if improved:
            _keep_best(result, epoch, scores.dice, predictions, model, config.output_dir)

        reporter.report(EpochRecord(epoch, config.epochs, train_loss, scores.dice, scores.mean_dice, finished - started, improved))
        if epoch < config.epochs and reporter.should_stop():
            result.stopped_early = True
            break

    result.best_hausdorff95_per_structure = boundary_scores(result.best_predictions, data)
    return result


def _train_epoch(model, loader, loss_function, optimizer, scaler, device, use_amp) -> float:
    model.train()
    total = 0.0
    steps = 0
    for images, labels in loader:
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, use_amp):
            outputs = model(images)
            if outputs.dim() == images.dim() + 1:  # DynUNet deep supervision: [B, heads, C, *spatial]
                outputs = list(torch.unbind(outputs, dim=1))
            loss = loss_function(outputs, labels)
        if not torch.isfinite(loss):
            msg = f"training loss is {loss.item()} at step {steps + 1}; the learning rate may be too high"
            raise NonFiniteLossError(msg)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        total += loss.item()
        steps += 1
    return total / max(steps, 1)


def _keep_best(result: TrainingResult, epoch: int, dice: list[float], predictions, model, output_dir) -> None:
    result.best_dice = float(np.mean(dice))
    result.best_epoch = epoch
    result.best_dice_per_structure = list(dice)
    result.best_predictions = predictions
    if output_dir is not None:
        result.checkpoint = save_weights(model, Path(output_dir) / CHECKPOINT_NAME)


def boundary_scores(predictions: list[np.ndarray], data: StudyData) -> list[float]:
    """95th-percentile Hausdorff distance per structure (voxels), averaged over validation cases."""
    per_case = [
        hausdorff95_per_structure(
            torch.from_numpy(prediction.astype(np.int64))[None, None],
            torch.from_numpy(case.label.astype(np.int64))[None, None],
            data.num_classes,
        )
        for prediction, case in zip(predictions, data.validation)
    ]
    if not per_case:
        return []
    columns = [value - 1 for value in data.structure_values]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a structure missing from every case gives NaN
        means = np.nanmean(np.array(per_case, dtype=float), axis=0)
    return [float(value) for value in means[columns]]
