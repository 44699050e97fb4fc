"""Dice and HD95 per structure, against hand-computed masks and MONAI's DiceMetric."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hpo.training.metrics import dice_per_structure, hausdorff95_per_structure


def as_batch(label_map: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(label_map.astype(np.int64))[None, None]


def test_dice_hand_computed():
    target = np.zeros((10, 10), dtype=np.int64)
    prediction = np.zeros((10, 10), dtype=np.int64)
    target[0:4, 0:4] = 1      # 16 voxels
    prediction[0:4, 0:2] = 1  # 8 voxels, all inside the target
    target[6:8, 6:8] = 2      # 4 voxels
    prediction[6:8, 7:9] = 2  # 4 voxels, 2 overlapping
    dice = dice_per_structure(as_batch(prediction), as_batch(target), num_classes=3)
    assert dice[0] == pytest.approx(2 * 8 / (16 + 8))
    assert dice[1] == pytest.approx(2 * 2 / (4 + 4))


@pytest.mark.parametrize(
    ("in_prediction", "in_target", "expected"),
    [(False, False, 1.0), (True, False, 0.0), (False, True, 0.0)],
    ids=["absent from both", "false positive only", "missed entirely"],
)
def test_dice_empty_structure(in_prediction, in_target, expected):
    prediction = np.zeros((6, 6), dtype=np.int64)
    target = np.zeros((6, 6), dtype=np.int64)
    prediction[1, 1] = 1 if in_prediction else 0
    target[2, 2] = 1 if in_target else 0
    assert dice_per_structure(as_batch(prediction), as_batch(target), num_classes=2) == [expected]


def test_dice_matches_monai_dice_metric():
    from monai.metrics import DiceMetric
    from monai.networks.utils import one_hot

    rng = np.random.default_rng(0)
    target = rng.integers(0, 3, size=(2, 1, 12, 12, 12))
    prediction = np.where(rng.random(target.shape) < 0.7, target, rng.integers(0, 3, size=target.shape))
    metric = DiceMetric(include_background=False, reduction="mean_batch")
    metric(one_hot(torch.from_numpy(prediction), 3), one_hot(torch.from_numpy(target), 3))
    expected = metric.aggregate().tolist()

    ours = dice_per_structure(torch.from_numpy(prediction), torch.from_numpy(target), num_classes=3)
    assert ours == pytest.approx(expected, abs=1e-6)


def test_hausdorff95_hand_computed():
    target = np.zeros((20, 20), dtype=np.int64)
    prediction = np.zeros((20, 20), dtype=np.int64)
    target[5:10, 5:10] = 1
    prediction[5:10, 8:13] = 1  # the same square moved 3 voxels along one axis
    distance = hausdorff95_per_structure(as_batch(prediction), as_batch(target), num_classes=2)[0]
    assert distance == pytest.approx(3.0)


def test_hausdorff95_undefined_for_missing_structure():
    target = np.zeros((8, 8), dtype=np.int64)
    target[2:4, 2:4] = 1
    distance = hausdorff95_per_structure(as_batch(np.zeros_like(target)), as_batch(target), num_classes=2)[0]
    assert math.isnan(distance)
