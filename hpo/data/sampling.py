"""Training patches: random crops of which a set fraction is centred on a labelled voxel.

Small structures fill a few percent of a volume or less, so uniformly placed patches would mostly
show background. Each patch is centred on a random foreground voxel with probability
`foreground_ratio`, and anywhere in the volume otherwise.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from hpo.data.cache import PreparedCase


class PatchDataset(Dataset):
    """`length` random patches per epoch, each drawn from a generator seeded by (seed, epoch, index).

    The same seed gives the same patches whatever the number of loader processes.
    """

    def __init__(
        self, cases: list[PreparedCase], patch_size: tuple[int, ...], foreground_ratio: float, length: int, seed: int
    ) -> None:
        if not cases:
            raise ValueError("PatchDataset needs at least one case")
        if not 0.0 <= foreground_ratio <= 1.0:
            msg = f"foreground_ratio must be within [0, 1] but got {foreground_ratio}"
            raise ValueError(msg)

        self.cases = cases
        self.patch_size = tuple(patch_size)
        self.foreground_ratio = foreground_ratio
        self.length = length
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng((self.seed, self.epoch, index))
        case = self.cases[int(rng.integers(len(self.cases)))]
        centre = choose_centre(case, self.foreground_ratio, rng)
        image, label = crop_patch(case.image, case.label, centre, self.patch_size)
        image = augment_intensity(image, rng)
        return torch.from_numpy(image), torch.from_numpy(label[None].astype(np.int64))


def choose_centre(case: PreparedCase, foreground_ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Choose a patch centre: a random labelled voxel with probability `foreground_ratio`, else any voxel."""
    if len(case.foreground) and rng.random() < foreground_ratio:
        return case.foreground[int(rng.integers(len(case.foreground)))]
    return np.array([int(rng.integers(size)) for size in case.label.shape])


def crop_patch(
    image: np.ndarray, label: np.ndarray, centre: np.ndarray, patch_size: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Crop `patch_size` around `centre`, padding with the image minimum and background where it overhangs."""
    spatial = label.shape
    starts = [int(c) - p // 2 for c, p in zip(centre, patch_size)]
    source = tuple(slice(max(s, 0), min(s + p, n)) for s, p, n in zip(starts, patch_size, spatial))
    target = tuple(slice(sl.start - s, sl.stop - s) for sl, s in zip(source, starts))

    image_patch = np.full((image.shape[0], *patch_size), image.min(), dtype=np.float32)
    label_patch = np.zeros(patch_size, dtype=label.dtype)
    image_patch[(slice(None), *target)] = image[(slice(None), *source)]
    label_patch[target] = label[source]
    return image_patch, label_patch


def augment_intensity(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scale and shift intensities a little (about 10 %), so the network does not learn one scanner's contrast."""
    scale = rng.uniform(0.9, 1.1)
    shift = rng.uniform(-0.1, 0.1)
    return (image * scale + shift).astype(np.float32)
