"""`hpo dashboard`: optuna-dashboard on the study's storage and artifact store."""

from __future__ import annotations

import argparse
import ipaddress
import logging

from hpo.cli.run import add_storage_option

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser("dashboard", help="serve optuna-dashboard for a study, with its trial artifacts")
    parser.add_argument("config", help="study YAML file")
    add_storage_option(parser)
    parser.add_argument(
        "--host", default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1; the dashboard has no login, so bind other addresses with care)",
    )
    parser.add_argument("--port", type=int, default=8080, help="TCP port to listen on (default: 8080)")
    parser.set_defaults(handler=dashboard_command)


def dashboard_command(arguments: argparse.Namespace) -> int:
    from hpo.config import load_config
    from hpo.config.loader import study_dir
    from hpo.study.dashboard import serve_dashboard

    config = load_config(arguments.config)
    if not _is_loopback(arguments.host):
        logger.warning(
            "The dashboard listens on %s without a login: anyone who reaches that address can read and edit the study",
            arguments.host,
        )
    serve_dashboard(config, study_dir(config), arguments.storage, arguments.host, arguments.port)
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
