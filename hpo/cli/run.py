"""`hpo run`: run a study's trials in this process until its budget is spent."""

from __future__ import annotations

import argparse


def add_storage_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage", metavar="URL",
        help="study storage URL, overriding HPO_STORAGE and the config (default: SQLite file in the study folder)",
    )


def register(subparsers) -> None:
    parser = subparsers.add_parser("run", help="run a study's trials until its budget is spent")
    parser.add_argument("config", help="study YAML file")
    add_storage_option(parser)
    parser.add_argument("--n-trials", type=int, metavar="N", help="finished trials to reach, overriding budget.n_trials")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="stop starting trials after this many seconds")
    parser.set_defaults(handler=run_command)


def run_command(arguments: argparse.Namespace) -> int:
    from hpo.config import load_config
    from hpo.study.runner import run_worker
    from hpo.study.summary import format_summary, summarise

    config = load_config(arguments.config)
    study = run_worker(config, arguments.storage, arguments.n_trials, arguments.timeout)
    print(format_summary(summarise(study)))
    return 0
