"""Whole-volume inference with MONAI's sliding window, and validation scores built on it."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hpo.training.metrics import dice_per_structure


def autocast(device: torch.device, enabled: bool):
    """Mixed-precision context on CUDA when enabled, a no-op otherwise."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()


@torch.no_grad()
def predict_label_map(
    model: nn.Module, image: np.ndarray, patch_size: tuple[int, ...], device: torch.device,
    overlap: float = 0.25, amp: bool = False,
) -> np.ndarray:
    """Segment one preprocessed image [C, *spatial] into a label map [*spatial] of class indices.

    Volumes larger than the patch are tiled by sliding windows; smaller ones are padded by MONAI.
    """
    from monai.inferers import sliding_window_inference

    model.eval()
    inputs = torch.from_numpy(np.ascontiguousarray(image))[None].to(device)
    with autocast(device, amp):
        logits = sliding_window_inference(inputs, patch_size, sw_batch_size=4, predictor=model, overlap=overlap, mode="gaussian")
    return logits.argmax(dim=1)[0].to(torch.uint8).cpu().numpy()


@dataclass(frozen=True)
class ValidationScores:
    """Validation metrics averaged over cases, one value per foreground structure."""

    dice: list[float]

    @property
    def mean_dice(self) -> float:
        return float(np.mean(self.dice))


def validate(
    model: nn.Module, cases: list, num_classes: int, patch_size: tuple[int, ...], device: torch.device,
    overlap: float = 0.25, amp: bool = False, structure_values: list[int] | None = None,
) -> tuple[ValidationScores, list[np.ndarray]]:
    """Segment every validation case; return per-structure scores and the predicted label maps.

    With `structure_values`, only those labels are scored, so a gap in the label values (an
    undeclared value such as 3 between 2 and 4) is not counted as a perfectly predicted structure.
    """
    predictions = [predict_label_map(model, case.image, patch_size, device, overlap, amp) for case in cases]
    dice = np.array([
        dice_per_structure(_batch(prediction), _batch(case.label), num_classes)
        for prediction, case in zip(predictions, cases)
    ])
    columns = [value - 1 for value in structure_values] if structure_values else list(range(num_classes - 1))
    return ValidationScores([float(value) for value in dice.mean(axis=0)[columns]]), predictions


def _batch(label_map: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(label_map.astype(np.int64))[None, None]

