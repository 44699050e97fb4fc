"""Reading NRRD and NIfTI volumes with their voxel-to-RAS affine, and placing masks on an image's grid.

NRRD headers give `space directions` (one row per axis) and `space origin` in the coordinate
system named by `space`, most often left-posterior-superior (LPS, as DICOM and ITK use). The
affine built here maps voxel indices to RAS millimetres, as NIfTI does, so both formats compare
directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

# Sign that turns each axis of a NRRD space into the matching RAS axis.
NRRD_SPACE_TO_RAS = {
    "left-posterior-superior": (-1.0, -1.0, 1.0),
    "LPS": (-1.0, -1.0, 1.0),
    "right-anterior-superior": (1.0, 1.0, 1.0),
    "RAS": (1.0, 1.0, 1.0),
    "left-anterior-superior": (-1.0, 1.0, 1.0),
    "LAS": (-1.0, 1.0, 1.0),
}
VOLUME_SUFFIXES = (".seg.nrrd", ".nrrd", ".nhdr", ".nii.gz", ".nii")
# Grid tolerances, in voxels: header round-off in real data is far smaller.
DIRECTION_TOLERANCE = 1e-3
OFFSET_TOLERANCE = 1e-2


class VolumeError(ValueError):
    """A volume cannot be read, or a mask does not lie on its image's grid."""


@dataclass(frozen=True)
class Volume:
    """A 3D array with the affine from voxel indices to RAS millimetres."""

    data: np.ndarray
    affine: np.ndarray
    path: Path

    @property
    def spacing(self) -> np.ndarray:
        return np.linalg.norm(self.affine[:3, :3], axis=0)


def volume_stem(path: Path) -> str:
    """Return the file name without its volume suffix: `Optic-Nerve-Lt.nrrd` gives `Optic-Nerve-Lt`."""
    name = path.name
    for suffix in VOLUME_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def is_volume_file(path: Path) -> bool:
    return path.is_file() and any(path.name.lower().endswith(suffix) for suffix in VOLUME_SUFFIXES)


def read_volume(path: str | Path) -> Volume:
    """Read a 3D NRRD or NIfTI file (a 4D file with one volume is squeezed to 3D)."""
    path = Path(path)
    if not path.is_file():
        raise VolumeError(f"{path}: file not found")
    try:
        if path.name.lower().endswith((".nrrd", ".nhdr")):
            data, affine = _read_nrrd(path)
        else:
            image = nib.load(path)
            data, affine = np.asanyarray(image.dataobj), image.affine
    except VolumeError:
        raise
    except Exception as error:  # nibabel and pynrrd raise many types for a corrupt or foreign file
        msg = f"{path}: unreadable as NRRD or NIfTI ({type(error).__name__}: {error})"
        raise VolumeError(msg) from error
    return Volume(_as_3d(data, path), np.asarray(affine, dtype=float), path)


def _read_nrrd(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import nrrd

    data, header = nrrd.read(str(path))
    space = header.get("space")
    directions = header.get("space directions")
    if space is None or directions is None:
        msg = f"{path}: the NRRD header has no 'space' and 'space directions', so its position in the patient is unknown"
        raise VolumeError(msg)
    if space not in NRRD_SPACE_TO_RAS:
        msg = f"{path}: NRRD space '{space}' is not supported; use one of {sorted(NRRD_SPACE_TO_RAS)}"
        raise VolumeError(msg)

    spatial_rows = [row for row in np.asarray(directions, dtype=float) if np.all(np.isfinite(row))]
    sign = np.array(NRRD_SPACE_TO_RAS[space])
    affine = np.eye(4)
    affine[:3, :3] = np.array(spatial_rows).T * sign[:, None]
    affine[:3, 3] = np.asarray(header.get("space origin", np.zeros(3)), dtype=float) * sign
    return data, affine


def _as_3d(data: np.ndarray, path: Path) -> np.ndarray:
    if data.ndim == 4 and 1 in data.shape:
        data = data.squeeze(axis=data.shape.index(1))
    if data.ndim != 3:
        msg = (
            f"{path}: shape {data.shape} is not a 3D volume; a multi-segment file (such as a Slicer .seg.nrrd "
            "with several segments) must be exported as one file per structure"
        )
        raise VolumeError(msg)
    return data


def place_on_grid(mask: Volume, image: Volume) -> np.ndarray:
    """Return the mask's foreground as a boolean array on the image's grid.

    The mask may use another axis order, flipped axes or another extent (a crop, or a larger
    field of view), but its voxels must coincide with image voxels. Foreground outside the image
    is an error, because cropping it would silently shorten a structure.
    """
    to_image = np.linalg.inv(image.affine) @ mask.affine
    rotation = np.rint(to_image[:3, :3])
    if not _is_signed_permutation(rotation) or not np.allclose(to_image[:3, :3], rotation, atol=DIRECTION_TOLERANCE):
        raise VolumeError(_grid_message(mask, image, "voxel size or axis directions differ"))
    offset = to_image[:3, 3]
    if not np.allclose(offset, np.rint(offset), atol=OFFSET_TOLERANCE):
        raise VolumeError(_grid_message(mask, image, f"origin is {np.round(offset % 1, 3).tolist()} voxels off the image grid"))

    data, start = _align_axes(mask.data > 0, rotation, np.rint(offset).astype(int))
    placed = np.zeros(image.data.shape, dtype=bool)
    source, target = _overlap(start, data.shape, image.data.shape)
    placed[target] = data[source]
    lost = int(data.sum()) - int(placed.sum())
    if lost:
        msg = f"{mask.path}: {lost} foreground voxels lie outside the image {image.path.name}; the mask does not belong to this image, or the image was cropped too tightly"
        raise VolumeError(msg)
    return placed


def _is_signed_permutation(matrix: np.ndarray) -> bool:
    magnitudes = np.abs(matrix)
    return bool(np.all(np.isin(matrix, (-1.0, 0.0, 1.0))) and np.all(magnitudes.sum(0) == 1) and np.all(magnitudes.sum(1) == 1))


def _align_axes(data: np.ndarray, rotation: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Transpose and flip mask data into image axis order; return it and its start index in the image."""
    axes = [int(np.flatnonzero(rotation[row])[0]) for row in range(3)]
    data = np.transpose(data, axes)
    start = offset.copy()
    for image_axis, mask_axis in enumerate(axes):
        if rotation[image_axis, mask_axis] < 0:
            data = np.flip(data, axis=image_axis)
            start[image_axis] -= data.shape[image_axis] - 1
    return data, start


def _overlap(start: np.ndarray, shape: tuple[int, ...], image_shape: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    source, target = [], []
    for begin, size, limit in zip(start, shape, image_shape):
        low, high = max(int(begin), 0), min(int(begin) + size, limit)
        high = max(high, low)
        target.append(slice(low, high))
        source.append(slice(low - int(begin), high - int(begin)))
    return tuple(source), tuple(target)


def _grid_message(mask: Volume, image: Volume, reason: str) -> str:
    return (
        f"{mask.path}: not on the grid of image {image.path.name} ({reason}; mask spacing "
        f"{np.round(mask.spacing, 4).tolist()} mm, image spacing {np.round(image.spacing, 4).tolist()} mm); "
        "resample the mask onto the image grid with nearest-neighbour interpolation first"
    )
