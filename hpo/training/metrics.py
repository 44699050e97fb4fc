"""Per-structure overlap and boundary metrics on label maps, computed with MONAI."""

from __future__ import annotations

import math
import warnings

import torch


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Turn integer label maps [B, 1, *spatial] into one-hot maps [B, num_classes, *spatial]."""
    from monai.networks.utils import one_hot as monai_one_hot

    return monai_one_hot(labels.long(), num_classes=num_classes, dim=1)


def dice_per_structure(prediction: torch.Tensor, target: torch.Tensor, num_classes: int) -> list[float]:
    """Dice of each foreground class (1 .. num_classes-1) between two label maps [B, 1, *spatial].

    A structure absent from both prediction and reference counts as Dice 1, and absent from only
    one as 0, so an empty prediction of an empty structure is not punished. Values are averaged
    over the batch.
    """
    from monai.metrics import compute_dice

    scores = compute_dice(
        one_hot(prediction, num_classes), one_hot(target, num_classes), include_background=False, ignore_empty=False
    )
    return [float(value) for value in scores.nanmean(dim=0)]


def hausdorff95_per_structure(
    prediction: torch.Tensor, target: torch.Tensor, num_classes: int, spacing: tuple[float, ...] | None = None
) -> list[float]:
    """95th-percentile Hausdorff distance of each foreground class, in millimetres when `spacing` is given.

    Returns NaN for a structure missing from the prediction or the reference, where the distance is undefined.
    """
    from monai.metrics import compute_hausdorff_distance

    with warnings.catch_warnings():
        # MONAI 1.5 to 1.6 warn about a deprecated argument that its own metric code still passes.
        warnings.filterwarnings("ignore", category=FutureWarning, module="monai")
        # An empty structure is expected here and gives NaN, which the callers handle.
        warnings.filterwarnings("ignore", message="the (prediction|ground truth) of class", category=UserWarning)
        distances = compute_hausdorff_distance(
            one_hot(prediction, num_classes), one_hot(target, num_classes),
            include_background=False, percentile=95, spacing=spacing,
        )
    values = distances.float().nanmean(dim=0)
    return [float(value) if math.isfinite(float(value)) else math.nan for value in values]
