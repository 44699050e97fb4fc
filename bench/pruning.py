"""Pruning savings on the real hippocampus data: the same seeded study with pruner none, median and hyperband.

Each pruner gets a fresh study (SQLite in a temporary folder) with the same sampler, seed, search
space, trial count and training settings, run by hpo's own worker loop (`hpo.study.runner.run_worker`).
The script reports, per pruner, the best mean validation Dice of a completed trial, the total
epochs trained (the trials' `epochs_run` user attribute) and the wall time, and compares them
with no pruning.

The default sampler is random search: its draws do not depend on earlier results, so every
pruner gets the same sequence of trial settings, and with a fixed training seed a pruned trial
follows the same Dice curve as its unpruned twin until it is stopped. The script checks that and
reports it. `--sampler tpe` runs hpo's default sampler instead, whose later trials depend on what
the pruner let finish.

    python bench/pruning.py                   # about 8 minutes on 2 CPU cores
    python bench/pruning.py --quick           # under a minute, to check that it runs
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

from common import DEFAULT_CACHE, HIPPOCAMPUS, RESULTS_DIR, load_average, require_hippocampus, write_results


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=HIPPOCAMPUS, help="hippocampus dataset folder (Decathlon layout)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="preprocessing cache folder")
    parser.add_argument("--max-cases", type=int, default=40, help="cases read from the dataset (80 %% train, 20 %% validation)")
    parser.add_argument("--pruners", nargs="+", default=["none", "median", "hyperband"],
                        choices=["none", "median", "percentile", "successive_halving", "hyperband"])
    parser.add_argument("--sampler", choices=["random", "tpe"], default="random")
    parser.add_argument("--seed", type=int, default=0, help="sampler and training seed")
    parser.add_argument("--trials", type=int, default=10, help="trials per pruner")
    parser.add_argument("--epochs", type=int, nargs=2, default=[3, 12], metavar=("LOW", "HIGH"), help="searched epoch range")
    parser.add_argument("--iterations", type=int, default=8, help="training steps per epoch")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--quick", action="store_true", help="2 trials of 1-2 epochs on 6 cases with a small network")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "pruning.json", help="results file (JSON)")
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.trials, arguments.epochs, arguments.iterations, arguments.max_cases = 2, [1, 2], 1, 6
    return arguments


def study_config(arguments: argparse.Namespace, pruner: str, output_dir: Path):
    """Build the study config used for every pruner. Only `pruner.name` differs."""
    from hpo.config.loader import parse_config

    channels, patch = ([4, 8], [16, 16, 16]) if arguments.quick else ([16, 32, 64, 128], [32, 48, 32])
    raw = {
        "study": {"name": f"pruning-{pruner}", "output_dir": str(output_dir)},
        "data": {"path": str(arguments.data), "max_cases": arguments.max_cases, "cache_dir": str(arguments.cache_dir)},
        "model": {"spatial_dims": 3, "patch_size": patch, "channels": channels, "num_res_units": 1},
        "search_space": {
            "learning_rate": {"low": 1e-4, "high": 3e-2, "log": True},
            "epochs": {"low": arguments.epochs[0], "high": arguments.epochs[1]},
            "batch_size": {"choices": [2, 4]},
            "foreground_ratio": {"low": 0.3, "high": 0.9},
            "loss": {"choices": ["dice_ce", "dice_focal"]},
        },
        "sampler": {"name": arguments.sampler, "seed": arguments.seed, "n_startup_trials": 5},
        "pruner": {"name": pruner, "n_startup_trials": 3, "n_warmup_steps": 2, "min_resource": 1, "reduction_factor": 3},
        "budget": {"n_trials": arguments.trials},
        "training": {"device": "cpu", "iterations_per_epoch": arguments.iterations, "seed": arguments.seed},
    }
    return parse_config(raw, source=f"pruning benchmark ({pruner})")


def run_pruner(arguments: argparse.Namespace, pruner: str, folder: Path) -> dict:
    """Run one study to its trial budget and collect its figures."""
    from optuna.trial import TrialState

    from hpo.study.runner import run_worker

    started = time.monotonic()
    study = run_worker(study_config(arguments, pruner, folder))
    seconds = time.monotonic() - started
    trials = [trial for trial in study.trials if trial.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    completed = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    best = max(completed, key=lambda trial: trial.value) if completed else None
    return {
        "best_mean_dice": round(best.value, 4) if best else None,
        "best_trial": best.number if best else None,
        "epochs_trained": sum(int(trial.user_attrs.get("epochs_run", 0)) for trial in trials),
        "completed": len(completed),
        "pruned": len(trials) - len(completed),
        "seconds": round(seconds, 1),
        "load": load_average(),
        "trials": [
            {
                "number": trial.number, "state": trial.state.name, "params": trial.params,
                "epochs_run": trial.user_attrs.get("epochs_run"),
                "mean_dice_per_epoch": [round(value, 4) for value in trial.user_attrs.get("mean_dice_per_epoch", [])],
            }
            for trial in trials
        ],
    }


def same_curves(reference: dict, other: dict) -> bool:
    """True when every trial of `other` has the settings and Dice curve prefix of the same-numbered reference trial."""
    by_number = {trial["number"]: trial for trial in reference["trials"]}
    for trial in other["trials"]:
        twin = by_number.get(trial["number"])
        if twin is None or twin["params"] != trial["params"]:
            return False
        curve = trial["mean_dice_per_epoch"]
        if any(abs(a - b) > 1e-3 for a, b in zip(curve, twin["mean_dice_per_epoch"][: len(curve)])):
            return False
    return True


def compare(results: dict) -> dict:
    """Compare each pruner with no pruning: Dice difference, share of epochs, and whether the trials matched."""
    baseline = results.get("none")
    if baseline is None or baseline["best_mean_dice"] is None:
        return {}
    comparison = {}
    for pruner, found in results.items():
        if pruner == "none" or found["best_mean_dice"] is None:
            continue
        comparison[pruner] = {
            "dice_difference": round(found["best_mean_dice"] - baseline["best_mean_dice"], 4),
            "epoch_share": round(found["epochs_trained"] / max(baseline["epochs_trained"], 1), 3),
            "time_share": round(found["seconds"] / max(baseline["seconds"], 1e-9), 3),
            "same_settings_and_curves_as_none": same_curves(baseline, found),
        }
    return comparison


def print_summary(results: dict, comparison: dict) -> None:
    print(f"\n{'pruner':<12} {'best Dice':>9} {'epochs':>7} {'complete':>9} {'pruned':>7} {'seconds':>8} {'Dice - none':>12} {'epoch share':>12}")
    for pruner, found in results.items():
        versus = comparison.get(pruner, {})
        difference = f"{versus['dice_difference']:+.4f}" if versus else "-"
        share = f"{versus['epoch_share']:.0%}" if versus else "-"
        best = f"{found['best_mean_dice']:.4f}" if found["best_mean_dice"] is not None else "none"
        print(
            f"{pruner:<12} {best:>9} {found['epochs_trained']:>7} {found['completed']:>9} {found['pruned']:>7} "
            f"{found['seconds']:>8.0f} {difference:>12} {share:>12}"
        )


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    require_hippocampus(arguments.data)
    import optuna
    import torch

    torch.set_num_threads(arguments.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("hpo.study.objective").setLevel(logging.INFO)
    print(f"{arguments.trials} trials per pruner, sampler {arguments.sampler}, seed {arguments.seed}; {load_average()}")

    results = {}
    with tempfile.TemporaryDirectory(prefix="hpo-bench-pruning-") as folder:
        for pruner in arguments.pruners:
            print(f"\npruner {pruner}:", flush=True)
            results[pruner] = run_pruner(arguments, pruner, Path(folder))
    comparison = compare(results)
    print_summary(results, comparison)

    settings = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(arguments).items()}
    path = write_results(arguments.out, "pruning", sys.argv, settings, {"pruners": results, "versus_none": comparison})
    print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
