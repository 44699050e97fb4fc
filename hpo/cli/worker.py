"""`hpo worker`: one worker process of a study that many workers share, on this or any machine."""

from __future__ import annotations

import argparse
import os

from hpo.cli.run import add_budget_options, add_storage_option
from hpo.study.interrupt import LAUNCHER_PID_VARIABLE


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "worker", help="run one worker of a shared study: take trials until the study-wide budget is spent",
    )
    parser.add_argument("config", help="study YAML file")
    add_storage_option(parser)
    add_budget_options(parser)
    parser.add_argument(
        "--threads", type=int, metavar="N",
        help="CPU threads for torch in this worker (default: torch's choice, all cores)",
    )
    parser.add_argument("--name", metavar="NAME", help="name recorded on this worker's trials (default: HOST:PID)")
    parser.set_defaults(handler=worker_command)


def worker_command(arguments: argparse.Namespace) -> int:
    from hpo.config import load_config
    from hpo.errors import ConfigError
    from hpo.study.interrupt import stop_when_parent_exits
    from hpo.study.runner import run_worker
    from hpo.study.summary import format_summary, summarise

    if arguments.threads is not None:
        if arguments.threads < 1:
            raise ConfigError(f"--threads must be at least 1 but got {arguments.threads}.")
        import torch

        torch.set_num_threads(arguments.threads)
    launcher_pid = os.environ.get(LAUNCHER_PID_VARIABLE)
    if launcher_pid:
        stop_when_parent_exits(int(launcher_pid))

    config = load_config(arguments.config)
    study = run_worker(config, arguments.storage, arguments.n_trials, arguments.timeout, arguments.name, seed_per_worker=True)
    if not launcher_pid:  # the launcher prints one summary for all its workers
        print(format_summary(summarise(study)))
    return 0
