"""Training throughput of hpo's loop against a plain MONAI + PyTorch loop, alternated in one run.

All loops train the same MONAI UNet with Dice + cross-entropy and AdamW on the same preprocessed
hippocampus cases, with the same batch and patch size and the same share of foreground-centred
patches:

- hpo: `hpo.training.trainer.train` (one epoch), fed by `hpo.data.sampling.PatchDataset`. Its
  `seconds_training` covers the training steps only, not the validation that follows.
- reference: a hand-written loop over a standard `torch.utils.data.DataLoader` whose dataset applies
  MONAI's `SpatialPadd`, `RandCropByPosNegLabeld`, `RandScaleIntensityd` and `RandShiftIntensityd`,
  the pipeline a MONAI tutorial would suggest. Its transforms return MetaTensors.
- reference_plain_tensors: the same reference with MONAI's metadata tracking switched off, which
  shows how much of the gap the MetaTensor wrapper causes.

Each repeat times every loop, rotating their order, then times each data pipeline alone (batches
produced per second, no training). Figures are medians over the repeats; the ratios are medians of
the ratios within each repeat.

    python bench/throughput.py                 # about 3 minutes on 2 CPU cores
    python bench/throughput.py --quick         # a few seconds, to check that it runs
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

from common import DEFAULT_CACHE, HIPPOCAMPUS, RESULTS_DIR, load_average, median, require_hippocampus, write_results

# The loops compared. `reference_plain_tensors` is the reference with MONAI's metadata tracking off
# (`monai.data.set_track_meta(False)`), so its transforms hand out plain tensors, not MetaTensors.
LOOPS = ["hpo", "reference", "reference_plain_tensors"]


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=HIPPOCAMPUS, help="hippocampus dataset folder (Decathlon layout)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="preprocessing cache folder")
    parser.add_argument("--max-cases", type=int, default=40, help="cases read from the dataset (80 %% train)")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--patch", type=int, nargs="+", default=[32, 48, 32], help="patch size in voxels")
    parser.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64, 128], help="UNet channels per level")
    parser.add_argument("--foreground-ratio", type=float, default=0.67, help="share of foreground-centred patches")
    parser.add_argument("--steps", type=int, default=60, help="training steps per timed run")
    parser.add_argument("--repeats", type=int, default=9, help="timed runs of each loop (median reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 keeps a shared CPU steady)")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes for both loops")
    parser.add_argument("--quick", action="store_true", help="tiny run (2 steps, 1 repeat, small network) to check the script")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "throughput.json", help="results file (JSON)")
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.steps, arguments.repeats, arguments.max_cases = 2, 1, 6
        arguments.channels, arguments.patch = [4, 8], [16, 16, 16]
    return arguments


def load_data(arguments: argparse.Namespace):
    from hpo.config.schema import DataSection
    from hpo.data.study_data import load_study_data

    section = DataSection(path=str(arguments.data), max_cases=arguments.max_cases, cache_dir=str(arguments.cache_dir))
    return load_study_data(section, spatial_dims=len(arguments.patch))


def hpo_config(arguments: argparse.Namespace, data):
    from hpo.models.settings import NetworkSettings
    from hpo.training.config import TrainingConfig

    network = NetworkSettings(
        "unet", len(arguments.patch), data.in_channels, data.num_classes, tuple(arguments.channels), num_res_units=1
    )
    return TrainingConfig(
        network=network, patch_size=tuple(arguments.patch), learning_rate=1e-3, epochs=1,
        batch_size=arguments.batch_size, foreground_ratio=arguments.foreground_ratio,
        iterations_per_epoch=arguments.steps, device="cpu", amp="off", num_workers=arguments.num_workers,
    )


def time_hpo_loop(config, data, repeat: int) -> float:
    """Seconds that `train` spent in its training steps for one epoch of `config.iterations_per_epoch` steps."""
    from hpo.training.trainer import train

    result = train(replace(config, seed=repeat), data)
    return result.seconds_training


def reference_loader(cases, arguments: argparse.Namespace, seed: int):
    """Build a standard PyTorch DataLoader over MONAI dictionary transforms that samples cases with replacement."""
    import torch
    from monai.data import Dataset, list_data_collate
    from monai.transforms import Compose, RandCropByPosNegLabeld, RandScaleIntensityd, RandShiftIntensityd, SpatialPadd

    keys = ["image", "label"]
    transforms = Compose([
        SpatialPadd(keys, spatial_size=arguments.patch),
        RandCropByPosNegLabeld(
            keys, label_key="label", spatial_size=arguments.patch, pos=arguments.foreground_ratio,
            neg=1.0 - arguments.foreground_ratio, num_samples=1,
        ),
        RandScaleIntensityd("image", factors=0.1, prob=1.0),
        RandShiftIntensityd("image", offsets=0.1, prob=1.0),
    ])
    transforms.set_random_state(seed=seed)
    items = [{"image": case.image, "label": case.label[None]} for case in cases]
    generator = torch.Generator().manual_seed(seed)
    sampler = torch.utils.data.RandomSampler(
        items, replacement=True, num_samples=arguments.steps * arguments.batch_size, generator=generator
    )
    return torch.utils.data.DataLoader(
        Dataset(items, transforms), batch_size=arguments.batch_size, sampler=sampler,
        num_workers=arguments.num_workers, collate_fn=list_data_collate,
    )


def time_reference_loop(config, data, arguments: argparse.Namespace, repeat: int) -> float:
    """Seconds for the same number of training steps in a plain MONAI + PyTorch loop."""
    import torch
    from monai.losses import DiceCELoss
    from monai.networks.nets import UNet

    torch.manual_seed(repeat)
    network = config.network
    model = UNet(
        spatial_dims=network.spatial_dims, in_channels=network.in_channels, out_channels=network.out_channels,
        channels=network.channels, strides=(2,) * (len(network.channels) - 1), num_res_units=network.num_res_units,
    )
    loss_function = DiceCELoss(to_onehot_y=True, softmax=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    loader = reference_loader(data.training, arguments, seed=repeat)

    model.train()
    started = time.monotonic()
    for batch in loader:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_function(model(batch["image"]), batch["label"])
        loss.backward()
        optimizer.step()
        loss.item()
    return time.monotonic() - started


def hpo_loader(config, data, repeat: int):
    """Build the DataLoader that `train` builds, with the same arguments."""
    from torch.utils.data import DataLoader

    from hpo.data.sampling import PatchDataset

    dataset = PatchDataset(
        data.training, config.patch_size, config.foreground_ratio,
        config.iterations_per_epoch * config.batch_size, repeat,
    )
    dataset.set_epoch(1)
    return DataLoader(dataset, batch_size=config.batch_size, shuffle=False, num_workers=config.num_workers)


def batches_per_second(loader) -> float:
    """Batches the loader produces per second with nothing consuming them."""
    started = time.monotonic()
    count = sum(1 for _ in loader)
    return count / (time.monotonic() - started)


@contextlib.contextmanager
def metadata_tracking(enabled: bool):
    """Switch MONAI's MetaTensor output on or off (a process-wide flag) for the duration of a block."""
    from monai.data import get_track_meta, set_track_meta

    previous = get_track_meta()
    set_track_meta(enabled)
    try:
        yield
    finally:
        set_track_meta(previous)


def run_loop(name: str, arguments: argparse.Namespace, config, data, repeat: int) -> tuple[float, float]:
    """Time one loop's training steps, then its data pipeline alone; return (seconds, batches per second)."""
    if name == "hpo":
        return time_hpo_loop(config, data, repeat), batches_per_second(hpo_loader(config, data, repeat))
    with metadata_tracking(name == "reference"):
        seconds = time_reference_loop(config, data, arguments, repeat)
        produced = batches_per_second(reference_loader(data.training, arguments, repeat))
    return seconds, produced


def measure(arguments: argparse.Namespace, config, data) -> dict:
    """Run every loop `repeats` times, rotating their order, after one untimed warm-up of each."""
    small = replace(data, validation=data.validation[:1])  # validation is not timed; keep it short
    for name in LOOPS:
        run_loop(name, arguments, config, small, 0)

    timings: dict[str, dict[str, list[float]]] = {name: {"seconds": [], "loader": []} for name in LOOPS}
    for repeat in range(1, arguments.repeats + 1):
        shift = repeat % len(LOOPS)
        for name in LOOPS[shift:] + LOOPS[:shift]:
            seconds, produced = run_loop(name, arguments, config, small, repeat)
            timings[name]["seconds"].append(seconds)
            timings[name]["loader"].append(produced)
        rates = ", ".join(f"{name} {arguments.steps / timings[name]['seconds'][-1]:.2f}" for name in LOOPS)
        print(f"repeat {repeat}/{arguments.repeats} steps/s: {rates}  ({load_average()})", flush=True)
    return timings


def summarise(arguments: argparse.Namespace, timings: dict) -> dict:
    voxels_per_step = arguments.batch_size * math.prod(arguments.patch)
    summary: dict = {}
    for name in LOOPS:
        steps = median([arguments.steps / seconds for seconds in timings[name]["seconds"]])
        produced = median(timings[name]["loader"])
        summary[name] = {
            "steps_per_second": round(steps, 3),
            "voxels_per_second": round(steps * voxels_per_step),
            "loader_batches_per_second": round(produced, 2),
            "loader_share_of_step": round(steps / produced, 4),
            "raw_seconds": [round(value, 4) for value in timings[name]["seconds"]],
            "raw_loader_batches_per_second": [round(value, 2) for value in timings[name]["loader"]],
        }
    for name in LOOPS[1:]:
        paired = [theirs / ours for ours, theirs in zip(timings["hpo"]["seconds"], timings[name]["seconds"])]
        summary[f"ratio_hpo_to_{name}"] = round(median(paired), 3)
        summary[f"raw_ratios_hpo_to_{name}"] = [round(value, 3) for value in paired]
    return summary


def print_summary(summary: dict) -> None:
    print(f"{'loop':<24} {'steps/s':>8} {'voxels/s':>11} {'loader batches/s':>17} {'loader share':>13}")
    for name in LOOPS:
        row = summary[name]
        print(
            f"{name:<24} {row['steps_per_second']:>8.2f} {row['voxels_per_second']:>11,} "
            f"{row['loader_batches_per_second']:>17.1f} {row['loader_share_of_step']:>13.1%}"
        )
    for name in LOOPS[1:]:
        print(f"steps/s ratio hpo / {name} (median of paired repeats): {summary[f'ratio_hpo_to_{name}']:.3f}")


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    require_hippocampus(arguments.data)
    import torch

    torch.set_num_threads(arguments.threads)
    data = load_data(arguments)
    config = hpo_config(arguments, data)
    print(f"{len(data.training)} training cases, batch {arguments.batch_size}, patch {arguments.patch}, "
          f"channels {arguments.channels}, {arguments.steps} steps x {arguments.repeats} repeats; {load_average()}")

    summary = summarise(arguments, measure(arguments, config, data))
    print_summary(summary)
    settings = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(arguments).items()}
    path = write_results(arguments.out, "throughput", sys.argv, settings, summary)
    print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
