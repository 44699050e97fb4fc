"""`hpo predict`: segment NIfTI files with a model folder written by `hpo export`."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser("predict", help="segment NIfTI files with a model folder from 'hpo export'")
    parser.add_argument("--model", required=True, metavar="DIR", help="model folder written by 'hpo export'")
    parser.add_argument(
        "--input", required=True, metavar="FILE_OR_DIR",
        help="a NIfTI file, or a folder of them (CASE_0000.nii.gz, CASE_0001.nii.gz, ... are one multi-channel case)",
    )
    parser.add_argument(
        "--output", required=True, metavar="FILE_OR_DIR",
        help="label map file to write, or a folder (required when --input is a folder)",
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to run the network (default: auto)")
    parser.set_defaults(handler=predict_command)


def predict_command(arguments: argparse.Namespace) -> int:
    from hpo.export.bundle import load_bundle
    from hpo.export.predict import predict
    from hpo.training.trainer import resolve_device

    device = resolve_device(arguments.device)
    model = load_bundle(arguments.model, device)
    written = predict(model, arguments.input, arguments.output, device)
    for path in written:
        print(path)
    return 0
