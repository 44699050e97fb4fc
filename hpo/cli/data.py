"""`hpo data ...`: getting datasets onto this machine and into the layouts that studies read."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="download or import datasets")
    commands = parser.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")

    download = commands.add_parser("download", help="download a Medical Segmentation Decathlon task (MD5 verified)")
    download.add_argument(
        "task", nargs="?", default="Task04_Hippocampus",
        help="Decathlon task: Task01_BrainTumour, Task02_Heart, Task03_Liver, Task04_Hippocampus, Task05_Prostate, "
        "Task06_Lung, Task07_Pancreas, Task08_HepaticVessel, Task09_Spleen or Task10_Colon (default: Task04_Hippocampus)",
    )
    download.add_argument("--out", required=True, help="folder to extract into; the dataset lands in OUT/TASK")
    download.add_argument("--url", help="download from this URL instead (an HTTP or HTTPS mirror)")
    download.add_argument("--md5", help="expected MD5 of the archive at --url")
    download.set_defaults(handler=download_command)

    from hpo.cli import data_import

    data_import.register(commands)


def download_command(arguments: argparse.Namespace) -> int:
    from hpo.data.download import download_decathlon

    dataset_dir = download_decathlon(arguments.task, arguments.out, arguments.url, arguments.md5)
    print(f"Dataset ready: {dataset_dir}\nSet data.path in your study config to this folder.")
    return 0
