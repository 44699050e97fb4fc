"""`hpo run`: run a study's trials until its budget is spent, in this process or in N worker processes."""

from __future__ import annotations

import argparse


def add_storage_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage", metavar="URL",
        help="study storage URL, overriding HPO_STORAGE and the config (default: SQLite file in the study folder)",
    )


def add_budget_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--n-trials", type=int, metavar="N",
        help="finished trials to reach, counted over all workers, overriding budget.n_trials",
    )
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="stop starting trials after this many seconds")


def register(subparsers) -> None:
    parser = subparsers.add_parser("run", help="run a study's trials until its budget is spent")
    parser.add_argument("config", help="study YAML file")
    add_storage_option(parser)
    add_budget_options(parser)
    parser.add_argument(
        "--workers", type=int, metavar="N",
        help="run N worker processes on the study at once (default: train in this process)",
    )
    parser.add_argument(
        "--gpus", metavar="IDS",
        help="comma-separated GPU ids to pin workers to, round-robin (default: every GPU CUDA shows); "
        "without --workers, one worker per GPU",
    )
    parser.set_defaults(handler=run_command)


def run_command(arguments: argparse.Namespace) -> int:
    from hpo.config import load_config
    from hpo.study.runner import run_worker
    from hpo.study.summary import format_summary, summarise

    config = load_config(arguments.config)
    if arguments.workers is not None or arguments.gpus is not None:
        return run_workers_command(arguments, config)

    study = run_worker(config, arguments.storage, arguments.n_trials, arguments.timeout)
    print(format_summary(summarise(study)))
    return 0


def run_workers_command(arguments: argparse.Namespace, config) -> int:
    from hpo.study.launcher import INTERRUPTED_STATUS, HPO_ERROR_STATUS, launch, visible_gpus
    from hpo.study.runner import open_study
    from hpo.study.summary import format_summary, summarise

    workers = arguments.workers
    if workers is None:
        workers = len(visible_gpus(arguments.gpus, config.training.device))
    status = launch(
        arguments.config, config, workers, arguments.gpus, arguments.storage, arguments.n_trials,
        arguments.timeout, arguments.verbose,
    )
    if status not in (INTERRUPTED_STATUS, HPO_ERROR_STATUS):
        print(format_summary(summarise(open_study(config, arguments.storage, create=False).study)))
    return status
