"""`hpo status`: the study's trials by state and its best trial, as a table or JSON."""

from __future__ import annotations

import argparse
import json

from hpo.cli.run import add_storage_option


def register(subparsers) -> None:
    parser = subparsers.add_parser("status", help="show a study's trials by state and its best trial")
    parser.add_argument("config", help="study YAML file")
    add_storage_option(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object for scripts")
    parser.set_defaults(handler=status_command)


def status_command(arguments: argparse.Namespace) -> int:
    from hpo.config import load_config
    from hpo.study.runner import open_study
    from hpo.study.summary import format_summary, summarise

    config = load_config(arguments.config)
    handle = open_study(config, arguments.storage, create=False)
    summary = summarise(handle.study)
    if arguments.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(format_summary(summary))
    return 0
