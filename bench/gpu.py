"""GPU figures for one 2D and one 3D trial, with mixed precision on and off.

For each of the four runs (2D thyroid ultrasound, 3D hippocampus MRI; AMP on, AMP off) the script
calls hpo's trainer (`hpo.training.trainer.train`) twice with one epoch: an untimed warm-up, then the
measured epoch. It records

- training steps and voxels per second (the trainer's `seconds_training`, validation excluded);
- peak GPU memory allocated and reserved by PyTorch during the measured epoch;
- GPU utilisation: the mean and median of samples taken every 0.1 s during the measured epoch,
  from `torch.cuda.utilization()` (needs the `nvidia-ml-py` package) or else `nvidia-smi`.
  Validation (two cases) is part of that epoch, so it is part of those samples.

    python bench/gpu.py                        # under 5 minutes on one GPU
    python bench/gpu.py --device cpu --quick   # a dry run of the same code on the CPU, no GPU figures

Data: the hippocampus MRI (Decathlon layout) and the TG3K thyroid frames (JPEG image and mask
pairs, masks thresholded at 128), both read from the `shared/data` folder beside the repository.
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from common import DEFAULT_CACHE, HIPPOCAMPUS, REPOSITORY, RESULTS_DIR, load_average, require_hippocampus, write_results

THYROID = REPOSITORY.parent / "shared" / "data" / "tg3k-thyroid-us"


@dataclass(frozen=True)
class TrialShape:
    """The fixed settings of one benchmarked trial."""

    name: str
    patch_size: tuple[int, ...]
    batch_size: int
    channels: tuple[int, ...]


FULL_SHAPES = {
    "2d": TrialShape("2d", (256, 256), 16, (16, 32, 64, 128, 256)),
    "3d": TrialShape("3d", (32, 48, 32), 8, (16, 32, 64, 128)),
}
QUICK_SHAPES = {
    "2d": TrialShape("2d", (64, 64), 2, (4, 8)),
    "3d": TrialShape("3d", (16, 16, 16), 2, (4, 8)),
}


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="cpu is a dry run without GPU figures")
    parser.add_argument("--steps", type=int, default=100, help="training steps in the measured epoch")
    parser.add_argument("--hippocampus", type=Path, default=HIPPOCAMPUS, help="hippocampus dataset folder (Decathlon layout)")
    parser.add_argument("--thyroid", type=Path, default=THYROID, help="TG3K folder with images/ and masks/")
    parser.add_argument("--cases", type=int, default=40, help="cases of each dataset to load")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="preprocessing cache folder (hippocampus)")
    parser.add_argument("--quick", action="store_true", help="2 steps, 4 cases, small networks: checks that the script runs")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "gpu.json", help="results file (JSON)")
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.steps, arguments.cases = 2, 4
    return arguments


def check_device(device: str) -> None:
    """Exit with a clear message when CUDA was requested but no GPU is usable."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        sys.exit(
            f"error: no CUDA GPU is visible (torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'}). "
            "Run this script on a machine with an NVIDIA GPU and a CUDA build of torch, "
            "or pass '--device cpu --quick' for a dry run of the code path without GPU figures."
        )


def load_hippocampus(arguments: argparse.Namespace):
    from hpo.config.schema import DataSection
    from hpo.data.study_data import load_study_data

    section = DataSection(path=str(arguments.hippocampus), max_cases=max(arguments.cases, 2), cache_dir=str(arguments.cache_dir))
    return load_study_data(section, spatial_dims=3)


def load_thyroid(arguments: argparse.Namespace, hippocampus):
    """Load the first `cases` TG3K training frames as prepared 2D cases and keep the last two for validation."""
    import numpy as np
    from PIL import Image

    from hpo.data.cache import PreparedCase

    frames = sorted((arguments.thyroid / "images" / "train").glob("*.jpg"))[: max(arguments.cases, 3)]
    if len(frames) < 3:
        sys.exit(f"error: no TG3K frames found under {arguments.thyroid / 'images' / 'train'}; pass --thyroid DIR.")
    cases = []
    for frame in frames:
        image = np.asarray(Image.open(frame).convert("L"), dtype=np.float32)
        label = (np.asarray(Image.open(arguments.thyroid / "masks" / "train" / frame.name).convert("L")) >= 128).astype(np.uint8)
        image = (image - image.mean()) / (image.std() + 1e-6)
        foreground = np.argwhere(label > 0).astype(np.int32)
        cases.append(PreparedCase(frame.stem, image[None], label, foreground))
    info = replace(hippocampus.info, labels={0: "background", 1: "thyroid"})
    return replace(hippocampus, info=info, training=cases[:-2], validation=cases[-2:])


def training_config(shape: TrialShape, data, arguments: argparse.Namespace, amp: bool):
    from hpo.models.settings import NetworkSettings
    from hpo.training.config import TrainingConfig

    network = NetworkSettings("unet", len(shape.patch_size), data.in_channels, data.num_classes, shape.channels, num_res_units=1)
    return TrainingConfig(
        network=network, patch_size=shape.patch_size, learning_rate=1e-3, epochs=1, batch_size=shape.batch_size,
        iterations_per_epoch=arguments.steps, device=arguments.device, amp="on" if amp else "off",
    )


class UtilisationSampler:
    """Samples GPU utilisation (percent) in a background thread until stopped."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self.source = self._pick_source()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _pick_source(self) -> str | None:
        import torch

        if not torch.cuda.is_available():
            return None
        try:
            torch.cuda.utilization()
            return "torch.cuda.utilization"
        except Exception:  # raised as ModuleNotFoundError or a pynvml error when NVML is missing
            return "nvidia-smi" if shutil.which("nvidia-smi") else None

    def _read(self) -> float:
        import torch

        if self.source == "torch.cuda.utilization":
            return float(torch.cuda.utilization())
        output = subprocess.run(
            ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", f"--id={torch.cuda.current_device()}"],
            capture_output=True, text=True, check=True,
        ).stdout
        return float(output.strip().splitlines()[0])

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append(self._read())

    def __enter__(self) -> UtilisationSampler:
        if self.source:
            self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self.source:
            self._thread.join()


def measure(shape: TrialShape, data, arguments: argparse.Namespace, amp: bool) -> dict:
    """Warm up, then time one epoch of `arguments.steps` steps; return its figures."""
    import torch

    from hpo.training.trainer import train

    config = training_config(shape, data, arguments, amp)
    train(config, data)
    cuda = arguments.device == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    with UtilisationSampler() as sampler:
        result = train(replace(config, seed=1), data)
    steps_per_second = arguments.steps / result.seconds_training
    figures = {
        "steps_per_second": round(steps_per_second, 2),
        "voxels_per_second": round(steps_per_second * shape.batch_size * math.prod(shape.patch_size)),
        "seconds_training": round(result.seconds_training, 3),
        "seconds_validation": round(result.seconds_validation, 3),
        "peak_memory_allocated_mib": round(torch.cuda.max_memory_allocated() / 2**20) if cuda else None,
        "peak_memory_reserved_mib": round(torch.cuda.max_memory_reserved() / 2**20) if cuda else None,
        "utilisation_percent_mean": round(statistics.fmean(sampler.samples), 1) if sampler.samples else None,
        "utilisation_percent_median": round(statistics.median(sampler.samples), 1) if sampler.samples else None,
        "utilisation_samples": len(sampler.samples),
        "utilisation_source": sampler.source,
    }
    return figures


def describe_device(device: str) -> dict:
    import torch

    if device != "cuda":
        return {"device": "cpu", "note": "dry run: no GPU figures"}
    properties = torch.cuda.get_device_properties(torch.cuda.current_device())
    return {
        "device": properties.name, "memory_gib": round(properties.total_memory / 2**30, 1),
        "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
    }


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    check_device(arguments.device)
    require_hippocampus(arguments.hippocampus)

    started = time.monotonic()
    hippocampus = load_hippocampus(arguments)
    datasets = {"3d": replace(hippocampus, validation=hippocampus.validation[:2]), "2d": load_thyroid(arguments, hippocampus)}
    shapes = QUICK_SHAPES if arguments.quick else FULL_SHAPES
    device = describe_device(arguments.device)
    print(f"device: {device}; {load_average()}")

    results: dict = {"device": device}
    print(f"{'trial':<6} {'AMP':<4} {'steps/s':>8} {'voxels/s':>13} {'peak alloc MiB':>15} {'GPU util %':>11}")
    for name, shape in shapes.items():
        for amp in (False, True):
            figures = measure(shape, datasets[name], arguments, amp)
            figures["patch_size"], figures["batch_size"], figures["channels"] = shape.patch_size, shape.batch_size, shape.channels
            results[f"{name}_amp_{'on' if amp else 'off'}"] = figures
            memory = figures["peak_memory_allocated_mib"]
            utilisation = figures["utilisation_percent_mean"]
            print(
                f"{name:<6} {'on' if amp else 'off':<4} {figures['steps_per_second']:>8.2f} {figures['voxels_per_second']:>13,} "
                f"{memory if memory is not None else 'n/a':>15} {utilisation if utilisation is not None else 'n/a':>11}",
                flush=True,
            )
    results["seconds_total"] = round(time.monotonic() - started, 1)

    settings = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(arguments).items()}
    path = write_results(arguments.out, "gpu", sys.argv, settings, results)
    print(f"results written to {path} ({results['seconds_total']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
