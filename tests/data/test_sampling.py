"""Foreground-favouring patch sampling."""

from __future__ import annotations

import numpy as np
import pytest

from hpo.data.cache import PreparedCase
from hpo.data.sampling import PatchDataset, crop_patch


def small_case(shape=(30, 30, 30)) -> PreparedCase:
    label = np.zeros(shape, dtype=np.uint8)
    label[20:22, 5:7, 10:12] = 1  # 8 labelled voxels out of 27,000
    image = np.random.default_rng(0).normal(size=(1, *shape)).astype(np.float32)
    return PreparedCase("case", image, label, np.argwhere(label > 0).astype(np.int32))


@pytest.mark.parametrize(("ratio", "low", "high"), [(1.0, 1.0, 1.0), (0.0, 0.0, 0.1), (0.5, 0.35, 0.65)])
def test_foreground_ratio(ratio, low, high):
    dataset = PatchDataset([small_case()], (8, 8, 8), ratio, length=200, seed=0)
    with_foreground = np.mean([bool(dataset[i][1].sum() > 0) for i in range(len(dataset))])
    assert low <= with_foreground <= high


def test_patch_shapes_and_padding():
    dataset = PatchDataset([small_case((6, 40, 40))], (16, 16, 16), 1.0, length=4, seed=0)
    image, label = dataset[0]
    assert tuple(image.shape) == (1, 16, 16, 16)
    assert tuple(label.shape) == (1, 16, 16, 16)


def test_crop_overhang_is_background():
    image = np.ones((1, 10, 10), dtype=np.float32)
    label = np.ones((10, 10), dtype=np.uint8)
    image_patch, label_patch = crop_patch(image, label, np.array([0, 0]), (8, 8))
    assert label_patch[:4].sum() == 0
    assert label_patch[4:, 4:].all()
    assert image_patch.shape == (1, 8, 8)


def test_same_seed_same_patches():
    first = PatchDataset([small_case()], (8, 8, 8), 0.5, length=3, seed=7)
    second = PatchDataset([small_case()], (8, 8, 8), 0.5, length=3, seed=7)
    for index in range(3):
        assert np.array_equal(first[index][0].numpy(), second[index][0].numpy())
