"""The `hpo` command: parses arguments, configures logging and dispatches to one command module.

Command modules import their heavy dependencies (torch, MONAI, Optuna) inside their functions,
so that `hpo --help` returns at once.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from hpo import __version__
from hpo.errors import HpoError

# Each module registers its subcommands with `register(subparsers)`.
COMMAND_MODULES = ("run", "worker", "status", "data", "dashboard", "export", "predict")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpo", description="Hyperparameter optimisation of U-Nets for small anatomical structures."
    )
    parser.add_argument("--version", action="version", version=f"hpo {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail as well")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"hpo.cli.{name}").register(subparsers)
    return parser


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(message)s" if not verbose else "%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("sqlalchemy", "filelock", "PIL", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Optuna installs its own handler; hpo logs trial starts and ends itself, so keep Optuna to warnings.
    import optuna

    optuna.logging.set_verbosity(logging.DEBUG if verbose else logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    configure_logging(arguments.verbose)
    try:
        return int(arguments.handler(arguments) or 0)
    except HpoError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
