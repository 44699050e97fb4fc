"""Head-and-neck-like CT volumes built on real organ masks, for trying the optic-nerve study without CT scans.

Each generated volume lies on the masks' own grid, cropped around the orbits and optic nerves,
and is written as a NRRD file in the masks' space, so `hpo data import-structures` reads the
real masks beside it. Intensities imitate CT in Hounsfield units (HU). Soft tissue is around
40 HU, each organ a few HU above or below its surroundings, and the optic nerves `nerve_contrast`
HU above the tissue around them. Blur (partial volume), a smooth bias field and Gaussian noise
follow. With the defaults the nerves are barely visible in a single slice.

    python -m hpo.data.importers.head_neck_phantom --masks ../shared/data/hn-oar-masks --out data/hn-ct

NOTE: these volumes test the pipeline and the search on real anatomy. Their intensities are
generated, so Dice scores on them do not predict accuracy on real CT.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

# Mean intensity of each organ in HU; organs drawn later are drawn over earlier ones.
ORGAN_INTENSITIES = {
    "Brain": 32.0,
    "Brainstem": 36.0,
    "Orbit-Lt": 12.0,
    "Orbit-Rt": 12.0,
    "Lacrimal-Lt": 48.0,
    "Lacrimal-Rt": 48.0,
    "Lens-Lt": 75.0,
    "Lens-Rt": 75.0,
}
NERVES = ("Optic-Nerve-Lt", "Optic-Nerve-Rt")
CROP_AROUND = ("Orbit-Lt", "Orbit-Rt", *NERVES)
TISSUE_HU = 40.0


@dataclass(frozen=True)
class PhantomSettings:
    """Contrast and noise of the generated volumes, in HU, and the crop margin in millimetres."""

    nerve_contrast: float = 18.0
    noise: float = 20.0
    bias: float = 10.0
    margin: float = 12.0
    seed: int = 0


def make_case(masks_dir: Path, out_file: Path, settings: PhantomSettings, seed: int) -> Path:
    """Write one CT-like NRRD volume on the grid of the masks in `masks_dir`, cropped around the orbits."""
    import nrrd

    masks, header = _read_masks(masks_dir)
    box = _crop_box(masks, header, settings.margin)
    cropped = {name: mask[box] for name, mask in masks.items()}
    volume = _intensities(cropped, header, settings, np.random.default_rng(seed))

    origin = np.asarray(header["space origin"], dtype=float)
    directions = np.asarray(header["space directions"], dtype=float)
    start = np.array([part.start for part in box])
    out_header = {
        "space": header["space"],
        "space directions": directions,
        "space origin": origin + start @ directions,
        "kinds": ["domain"] * 3,
        "encoding": "gzip",
    }
    out_file.parent.mkdir(parents=True, exist_ok=True)
    nrrd.write(str(out_file), volume, out_header)
    return out_file


def _read_masks(masks_dir: Path) -> tuple[dict[str, np.ndarray], dict]:
    import nrrd

    masks, header = {}, None
    for name in (*ORGAN_INTENSITIES, *NERVES):
        path = masks_dir / f"{name}.nrrd"
        if path.is_file():
            data, header = nrrd.read(str(path))
            masks[name] = data > 0
    missing = [name for name in CROP_AROUND if name not in masks]
    if missing:
        raise FileNotFoundError(f"{masks_dir}: masks {missing} not found; the phantom is cropped around them")
    return masks, header


def _crop_box(masks: dict[str, np.ndarray], header: dict, margin: float) -> tuple[slice, ...]:
    spacing = np.linalg.norm(np.asarray(header["space directions"], dtype=float), axis=1)
    union = np.zeros_like(masks[CROP_AROUND[0]])
    for name in CROP_AROUND:
        union |= masks[name]
    indices = np.argwhere(union)
    pad = np.ceil(margin / spacing).astype(int)
    low = np.maximum(indices.min(axis=0) - pad, 0)
    high = np.minimum(indices.max(axis=0) + pad + 1, union.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high))


def _intensities(masks: dict[str, np.ndarray], header: dict, settings: PhantomSettings, rng) -> np.ndarray:
    from scipy import ndimage

    shape = next(iter(masks.values())).shape
    spacing = np.linalg.norm(np.asarray(header["space directions"], dtype=float), axis=1)
    volume = np.full(shape, TISSUE_HU, dtype=np.float32)
    for name, value in ORGAN_INTENSITIES.items():
        if name in masks:
            volume[masks[name]] = value
    for name in NERVES:
        surroundings = ndimage.binary_dilation(masks[name], iterations=2) & ~masks[name]
        volume[masks[name]] = float(volume[surroundings].mean()) + settings.nerve_contrast

    volume = ndimage.gaussian_filter(volume, sigma=0.6 / spacing * spacing.min())
    bias = ndimage.gaussian_filter(rng.normal(0.0, 1.0, shape), sigma=20.0 / spacing)
    volume += settings.bias * bias / max(float(bias.std()), 1e-6)
    volume += rng.normal(0.0, settings.noise, shape)
    return np.clip(np.rint(volume), -1024, 3071).astype(np.int16)


def make_phantoms(masks_root: Path, out_root: Path, settings: PhantomSettings) -> list[Path]:
    """Write `OUT/CASE/image.nrrd` for every `CASE/segmentations/` folder under `masks_root`."""
    cases = sorted(path.parent for path in Path(masks_root).glob("*/segmentations") if path.is_dir())
    if not cases:
        raise FileNotFoundError(f"{masks_root}: no CASE/segmentations/ folders found")
    written = []
    for index, case in enumerate(cases):
        written.append(make_case(case / "segmentations", Path(out_root) / case.name / "image.nrrd", settings, settings.seed + index))
        logger.info("Wrote %s", written[-1])
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--masks", required=True, help="folder of CASE/segmentations/ORGAN.nrrd mask folders")
    parser.add_argument("--out", required=True, help="folder to write OUT/CASE/image.nrrd into")
    parser.add_argument("--nerve-contrast", type=float, default=PhantomSettings.nerve_contrast, help="optic nerve minus surroundings, in HU")
    parser.add_argument("--noise", type=float, default=PhantomSettings.noise, help="standard deviation of the Gaussian noise, in HU")
    parser.add_argument("--margin", type=float, default=PhantomSettings.margin, help="crop margin around orbits and nerves, in mm")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    settings = PhantomSettings(arguments.nerve_contrast, arguments.noise, margin=arguments.margin, seed=arguments.seed)
    written = make_phantoms(Path(arguments.masks), Path(arguments.out), settings)
    print(f"Wrote {len(written)} head-and-neck-like volumes under {arguments.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
