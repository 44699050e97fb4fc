"""`hpo export`: write the best trial (or a named one) as a self-contained model folder."""

from __future__ import annotations

import argparse

from hpo.cli.run import add_storage_option


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", help="write the best trial's model (or trial N's) as a MONAI Bundle folder for 'hpo predict'"
    )
    parser.add_argument("config", help="study YAML file")
    add_storage_option(parser)
    parser.add_argument("--trial", type=int, metavar="N", help="export trial N instead of the best completed trial")
    parser.add_argument("--out", required=True, metavar="DIR", help="model folder to create")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists and is not empty")
    parser.set_defaults(handler=export_command)


def export_command(arguments: argparse.Namespace) -> int:
    from hpo.config import load_config
    from hpo.study.artifacts import open_artifact_store
    from hpo.study.best_model import export_trial
    from hpo.study.runner import open_study

    config = load_config(arguments.config)
    handle = open_study(config, arguments.storage, create=False)
    store = open_artifact_store(config.study.artifact_store, handle.study_dir)
    trial, folder = export_trial(handle.study, handle.storage_url, store, arguments.out, arguments.trial, arguments.force)
    dice = trial.user_attrs.get("dice_per_structure", {})
    scores = ", ".join(f"{name} {value:.3f}" for name, value in dice.items())
    print(f"Exported trial {trial.number} ({trial.state.name}, mean Dice {trial.value if trial.value is None else round(trial.value, 4)}; {scores}) to {folder}")
    print(f"Segment a file with: hpo predict --model {folder} --input IMAGE.nii.gz --output IMAGE_seg.nii.gz")
    return 0
