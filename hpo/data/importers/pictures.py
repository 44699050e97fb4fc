"""2D pictures (PNG, JPEG, GIF, BMP, TIFF) as grey arrays and as single-slice NIfTI volumes.

A picture of H rows and W columns becomes a W x H x 1 volume. Axis 0 runs along the columns (left
to right) and axis 1 along the rows from the bottom up, because NIfTI viewers draw +y upwards and
so show the frame upright. The affine is diagonal, scaled by the pixel spacing.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff")
# Suffixes of lossy formats: masks stored this way hold values near, not at, 0 and 255.
LOSSY_SUFFIXES = (".jpg", ".jpeg")


class PictureError(ValueError):
    """A picture cannot be read as a single grey frame."""


def is_picture(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in PICTURE_SUFFIXES


def read_grey(path: Path) -> np.ndarray:
    """Read a picture as a 2D array [rows, columns]; colour is converted to grey luma (ITU-R 601).

    8-bit pictures come back as uint8; 16-bit and floating-point grey pictures keep their values.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            frames = getattr(picture, "n_frames", 1)
            if frames > 1:
                msg = f"{path}: has {frames} frames; only single-frame pictures are supported (save each frame as its own file)"
                raise PictureError(msg)
            return _to_grey(picture)
    except (OSError, UnidentifiedImageError) as error:
        msg = f"{path}: unreadable as a picture ({type(error).__name__}: {error})"
        raise PictureError(msg) from error


def _to_grey(picture) -> np.ndarray:
    if picture.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        return np.asarray(picture)
    if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
        picture = picture.convert("RGBA").convert("RGB")
    return np.asarray(picture.convert("L"))


def downsample(frame: np.ndarray, factor: int) -> np.ndarray:
    """Average `factor` x `factor` blocks; rows and columns that do not fill a block are dropped."""
    if factor == 1:
        return frame
    rows, columns = (frame.shape[0] // factor) * factor, (frame.shape[1] // factor) * factor
    blocks = frame[:rows, :columns].astype(np.float32).reshape(rows // factor, factor, columns // factor, factor)
    return blocks.mean(axis=(1, 3))


def frame_to_volume(frame: np.ndarray) -> np.ndarray:
    """Turn a picture array [rows, columns] into the volume layout [columns, rows bottom-up, 1]."""
    return np.ascontiguousarray(frame.T[:, ::-1, None])


def volume_to_frame(volume: np.ndarray) -> np.ndarray:
    """Undo `frame_to_volume`: a [columns, rows bottom-up, 1] volume back to a picture array [rows, columns]."""
    return np.ascontiguousarray(np.asarray(volume)[:, ::-1, 0].T)


def frame_affine(spacing: tuple[float, float]) -> np.ndarray:
    """Build the affine of a frame volume from `spacing`, the (column width, row height) in millimetres."""
    return np.diag([float(spacing[0]), float(spacing[1]), 1.0, 1.0])


def picture_to_nifti(path: Path, spacing: tuple[float, float] = (1.0, 1.0), factor: int = 1) -> nib.Nifti1Image:
    """Read a picture as a grey single-slice NIfTI image, ready for `hpo predict` or a dataset."""
    source = read_grey(path)
    frame = downsample(source, factor)
    frame = np.rint(frame).astype(np.uint8) if source.dtype == np.uint8 else frame.astype(np.float32)
    scaled = (spacing[0] * factor, spacing[1] * factor)
    image = nib.Nifti1Image(frame_to_volume(frame), frame_affine(scaled))
    image.header.set_xyzt_units("mm")
    return image


def label_map_to_picture(path: Path, out_path: Path) -> Path:
    """Write a single-slice label map (such as `hpo predict` output) as a PNG mask picture.

    A map with one structure is written as 0 and 255, so the mask shows in any viewer and imports
    again with the default threshold. With several structures, pixels keep their label values.
    """
    from PIL import Image

    data = np.asarray(nib.load(path).dataobj)
    if data.ndim != 3 or data.shape[2] != 1:
        msg = f"{path}: shape {data.shape} is not a single-slice volume (W x H x 1)"
        raise PictureError(msg)
    frame = volume_to_frame(data).astype(np.uint8)
    if frame.max() <= 1:
        frame = frame * 255
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(frame).save(out_path)
    return out_path
