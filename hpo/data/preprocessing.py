"""Per-volume preprocessing: reorientation, channel stacking and intensity normalisation.

The same functions serve training (through the cache) and prediction on new files, so an
exported model receives its inputs exactly as its trial did.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel import orientations

from hpo.errors import DatasetError


@dataclass(frozen=True)
class PreprocessingSettings:
    """Settings that turn volumes into network inputs, stored with exported models."""

    orientation: str = "RAS"
    clip_percentiles: tuple[float, float] = (0.5, 99.5)
    spatial_dims: int = 3

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> PreprocessingSettings:
        return cls(
            orientation=values["orientation"],
            clip_percentiles=tuple(values["clip_percentiles"]),
            spatial_dims=int(values["spatial_dims"]),
        )


def reorient(image: nib.spatialimages.SpatialImage, orientation: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Return the image's data in the target axis orientation (such as RAS) and the file's own axis codes."""
    source = orientations.io_orientation(image.affine)
    transform = orientations.ornt_transform(source, orientations.axcodes2ornt(tuple(orientation)))
    data = np.asanyarray(image.dataobj)
    moved = orientations.apply_orientation(data, transform)
    return np.ascontiguousarray(moved), tuple(orientations.ornt2axcodes(source))


def restore_orientation(array: np.ndarray, orientation: str, source_axcodes: tuple[str, ...]) -> np.ndarray:
    """Undo `reorient` on a spatial array such as a predicted label map, giving the file's own axis order."""
    transform = orientations.ornt_transform(
        orientations.axcodes2ornt(tuple(orientation)), orientations.axcodes2ornt(tuple(source_axcodes))
    )
    return np.ascontiguousarray(orientations.apply_orientation(array, transform))


def load_image(paths: tuple[Path, ...], settings: PreprocessingSettings) -> tuple[np.ndarray, tuple[str, ...]]:
    """Load one case's channels as a float32 array [C, *spatial], reoriented and normalised.

    Returns the array and the file's own axis codes, which `restore_orientation` takes.
    """
    channels = []
    source_axcodes: tuple[str, ...] = ()
    for path in paths:
        image = nib.load(path)
        data, source_axcodes = reorient(image, settings.orientation)
        data = data.astype(np.float32, copy=False)
        stacked = np.moveaxis(data, -1, 0) if data.ndim == 4 else data[None]
        channels.extend(stacked)
    volume = np.stack(channels).astype(np.float32)
    volume = to_spatial_dims(volume, settings.spatial_dims, paths[0])
    return normalise(volume, settings.clip_percentiles), source_axcodes


def load_label(path: Path, settings: PreprocessingSettings) -> np.ndarray:
    """Load a label map as the raw reoriented values (float, so that validation can see fractions)."""
    data, _ = reorient(nib.load(path), settings.orientation)
    return to_spatial_dims(data[None], settings.spatial_dims, path)[0]


def to_spatial_dims(volume: np.ndarray, spatial_dims: int, path: Path) -> np.ndarray:
    """Drop the singleton third axis of a single-slice volume when the model is 2D."""
    if volume.ndim - 1 == spatial_dims:
        return volume
    if spatial_dims == 2 and volume.ndim == 4 and volume.shape[-1] == 1:
        return volume[..., 0]
    msg = (
        f"{path}: spatial shape {volume.shape[1:]} does not fit a {spatial_dims}D model; "
        "set model.spatial_dims to match the data (2D data must be single-slice volumes)."
    )
    raise DatasetError(msg)


def normalise(volume: np.ndarray, clip_percentiles: tuple[float, float]) -> np.ndarray:
    """Clip each channel to its percentiles, then scale it to zero mean and unit variance."""
    out = np.empty_like(volume, dtype=np.float32)
    for index, channel in enumerate(volume):
        low, high = np.percentile(channel, clip_percentiles)
        clipped = np.clip(channel, low, high)
        std = float(clipped.std())
        out[index] = (clipped - float(clipped.mean())) / (std if std > 1e-8 else 1.0)
    return out
