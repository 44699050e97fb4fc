"""Trial artifacts through Optuna's artifact API: the store named by the config, and each trial's files.

Every finished trial, complete or pruned, uploads its best-epoch checkpoint, a learning-curve PNG
and a PNG of validation overlays. optuna-dashboard lists them on the trial's page when it is
started on the same artifact store (`hpo dashboard` does that).

`study.artifact_store` chooses the store. Unset means the folder `artifacts/` in the study
folder, and a folder path means that folder. `s3://bucket[/prefix]` means an S3-compatible bucket
through Optuna's `Boto3ArtifactStore`. boto3 then takes credentials and endpoint from its usual
environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, and `AWS_ENDPOINT_URL` for
MinIO and the like).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import BinaryIO

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact

from hpo.errors import ConfigError, StudyError
from hpo.study.figures import write_learning_curve, write_overlay

logger = logging.getLogger(__name__)

ARTIFACT_FOLDER = "artifacts"
LEARNING_CURVE_NAME = "learning_curve.png"
OVERLAY_NAME = "validation_overlay.png"
# Trial user attribute mapping each uploaded file name to its artifact id.
ARTIFACTS_ATTR = "artifacts"


class PrefixedArtifactStore:
    """An artifact store that keeps every artifact under a key prefix of another store (an S3 folder)."""

    def __init__(self, store, prefix: str) -> None:
        self.store = store
        self.prefix = prefix.strip("/") + "/"

    def open_reader(self, artifact_id: str) -> BinaryIO:
        return self.store.open_reader(self.prefix + artifact_id)

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        self.store.write(self.prefix + artifact_id, content_body)

    def remove(self, artifact_id: str) -> None:
        self.store.remove(self.prefix + artifact_id)


def open_artifact_store(location: str | None, study_dir: Path):
    """Open the artifact store named by `study.artifact_store` (see the module docstring)."""
    if not location:
        folder = Path(study_dir) / ARTIFACT_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        return FileSystemArtifactStore(str(folder))
    if location.startswith("s3://"):
        return _open_s3_store(location)
    if "://" in location:
        msg = f"study.artifact_store '{location}' is not supported; give a folder path or an s3://bucket/prefix URL."
        raise ConfigError(msg)

    folder = Path(os.path.expandvars(os.path.expanduser(location)))
    if not folder.is_absolute():
        msg = (
            f"study.artifact_store '{location}' is a relative path; give an absolute folder, "
            "or leave it unset for the study folder's artifacts/."
        )
        raise ConfigError(msg)
    folder.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(folder))


def _open_s3_store(location: str):
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    if not bucket:
        msg = f"study.artifact_store '{location}' names no bucket; write it as s3://bucket or s3://bucket/prefix."
        raise ConfigError(msg)
    try:
        import boto3
    except ImportError as error:
        msg = f"study.artifact_store '{location}' needs boto3; install it with: pip install 'hpo[s3]'"
        raise ConfigError(msg) from error

    from optuna.artifacts import Boto3ArtifactStore

    store = Boto3ArtifactStore(bucket, client=boto3.client("s3"))
    return PrefixedArtifactStore(store, prefix) if prefix.strip("/") else store


def upload_trial_artifacts(trial: optuna.Trial, store, result, data, output_dir: Path) -> dict[str, str]:
    """Draw the trial's figures into `output_dir`, upload them and the checkpoint, and record their ids.

    Returns the uploaded file names mapped to their artifact ids. A failed upload is logged and
    skipped: the trial's scores are already recorded, and losing a figure must not lose the trial.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    files = [result.checkpoint] if result.checkpoint is not None else []
    files.append(_draw_learning_curve(trial.number, result, output_dir / LEARNING_CURVE_NAME))
    files.append(_draw_overlay(trial.number, result, data, output_dir / OVERLAY_NAME))

    uploaded: dict[str, str] = {}
    for path in files:
        try:
            uploaded[Path(path).name] = upload_artifact(
                artifact_store=store, file_path=str(path), study_or_trial=trial, mimetype=_mimetype(Path(path)),
            )
        except Exception as error:  # storage back ends raise OSError, botocore errors and more
            logger.warning("Trial %d: upload of artifact %s failed: %s: %s", trial.number, path, type(error).__name__, error)
    trial.set_user_attr(ARTIFACTS_ATTR, uploaded)
    logger.debug("Trial %d: uploaded artifacts %s", trial.number, sorted(uploaded))
    return uploaded


def _mimetype(path: Path) -> str | None:
    # Python's guess for .pt comes from the system's mime.types and can be unrelated (a SNES format on Debian).
    return "application/octet-stream" if path.suffix == ".pt" else None


def _draw_learning_curve(number: int, result, path: Path) -> Path:
    title = f"Trial {number}: best mean Dice {result.best_dice:.3f} at epoch {result.best_epoch}"
    return write_learning_curve(result.train_losses, result.mean_dices, result.best_epoch, path, title)


def _draw_overlay(number: int, result, data, path: Path) -> Path:
    cases = data.validation
    return write_overlay(
        [case.image for case in cases], [case.label for case in cases], result.best_predictions,
        [case.case_id for case in cases], data.info.labels, path,
        f"Trial {number}: validation cases at epoch {result.best_epoch}",
    )


def fetch_checkpoint(trial: optuna.trial.FrozenTrial, store, destination: Path) -> Path:
    """Return a local copy of the trial's best-epoch weights.

    The path in the trial's `checkpoint` attribute is used when it exists on this machine.
    Otherwise the checkpoint artifact is downloaded from `store` into `destination`, because a
    worker on another machine or in a container leaves only the artifact behind.
    """
    recorded = trial.user_attrs.get("checkpoint")
    if recorded and Path(recorded).is_file():
        return Path(recorded)

    artifact_id = _checkpoint_artifact_id(trial, recorded)
    if artifact_id is None:
        msg = (
            f"Trial {trial.number} has no checkpoint here: '{recorded}' does not exist and no checkpoint artifact "
            "was uploaded. Run the export where the study's output folder is, or pick another trial with --trial."
        )
        raise StudyError(msg)
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    reader = store.open_reader(artifact_id)
    try:
        with open(destination, "wb") as writer:
            shutil.copyfileobj(reader, writer)
    finally:
        reader.close()
    logger.info("Downloaded trial %d's checkpoint from the artifact store", trial.number)
    return destination


def _checkpoint_artifact_id(trial: optuna.trial.FrozenTrial, recorded: str | None) -> str | None:
    name = Path(recorded).name if recorded else "best_model.pt"
    return trial.user_attrs.get(ARTIFACTS_ATTR, {}).get(name)
