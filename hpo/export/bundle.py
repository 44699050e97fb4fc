"""Model bundles: one trial's weights and everything needed to apply them, in the MONAI Bundle layout.

    best_model/
      configs/metadata.json    MONAI Bundle metadata: versions, task, input and output format
      configs/inference.json   a MONAI Bundle config that runs the model with MONAI's own transforms
      configs/hpo.json         what `hpo predict` reads: network, preprocessing, labels, the trial
      models/model.pt          the weights: a state dict of tensors, loadable with weights_only=True
      docs/README.md           a short description for people

`configs/hpo.json` is the authority for `hpo predict`; the two MONAI files are derived from it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from hpo import __version__
from hpo.data.preprocessing import PreprocessingSettings
from hpo.errors import HpoError
from hpo.models import NetworkSettings, build_network
from hpo.training.checkpoint import load_weights

logger = logging.getLogger(__name__)

BUNDLE_FORMAT = 1
DESCRIPTION_FILE = Path("configs/hpo.json")
METADATA_FILE = Path("configs/metadata.json")
INFERENCE_FILE = Path("configs/inference.json")
WEIGHTS_FILE = Path("models/model.pt")
README_FILE = Path("docs/README.md")


class BundleError(HpoError):
    """A model folder is missing, incomplete or does not match its weights."""


@dataclass(frozen=True)
class ModelDescription:
    """How to rebuild and apply an exported network, and where it came from."""

    network: NetworkSettings
    preprocessing: PreprocessingSettings
    patch_size: tuple[int, ...]
    sw_overlap: float
    labels: dict[int, str]
    channels: tuple[str, ...]
    source: dict = field(default_factory=dict)  # the study and trial: names, parameters, metrics

    @property
    def structure_names(self) -> dict[int, str]:
        return {value: name for value, name in self.labels.items() if value != 0}

    def to_dict(self) -> dict:
        return {
            "format": BUNDLE_FORMAT,
            "hpo_version": __version__,
            "network": self.network.to_dict(),
            "preprocessing": self.preprocessing.to_dict(),
            "inference": {"patch_size": list(self.patch_size), "sw_overlap": self.sw_overlap},
            "labels": {str(value): name for value, name in sorted(self.labels.items())},
            "channels": list(self.channels),
            **self.source,
        }

    @classmethod
    def from_dict(cls, values: dict, path: Path) -> ModelDescription:
        if values.get("format") != BUNDLE_FORMAT:
            msg = f"{path}: bundle format {values.get('format')!r} is not supported (this hpo reads format {BUNDLE_FORMAT})."
            raise BundleError(msg)
        try:
            known = {"format", "hpo_version", "network", "preprocessing", "inference", "labels", "channels", "weights"}
            return cls(
                network=NetworkSettings.from_dict(values["network"]),
                preprocessing=PreprocessingSettings.from_dict(values["preprocessing"]),
                patch_size=tuple(int(size) for size in values["inference"]["patch_size"]),
                sw_overlap=float(values["inference"]["sw_overlap"]),
                labels={int(value): name for value, name in values["labels"].items()},
                channels=tuple(values["channels"]),
                source={key: value for key, value in values.items() if key not in known},
            )
        except (KeyError, TypeError, ValueError) as error:
            msg = f"{path}: invalid model description ({type(error).__name__}: {error}); export the model again."
            raise BundleError(msg) from error


@dataclass
class LoadedModel:
    """A bundle read back: its description and the network with its weights, in evaluation mode."""

    folder: Path
    description: ModelDescription
    network: nn.Module


def write_bundle(description: ModelDescription, weights: Path, folder: Path, overwrite: bool = False) -> Path:
    """Write a model folder from a checkpoint, after checking that the weights fit the network.

    The folder is assembled under a temporary name beside `folder` and renamed into place, so an
    interrupted export leaves no half-written model behind.
    """
    from hpo.export.monai_files import bundle_readme, inference_config, metadata

    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()) and not overwrite:
        msg = f"{folder} exists and is not empty; choose another --out or pass --force to replace it."
        raise BundleError(msg)
    network = _network_with_weights(description.network, weights)

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.{uuid.uuid4().hex[:8]}.partial"
    try:
        staging.mkdir()
        for relative in (WEIGHTS_FILE, DESCRIPTION_FILE, README_FILE):
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
        torch.save({key: value.detach().cpu() for key, value in network.state_dict().items()}, staging / WEIGHTS_FILE)
        values = description.to_dict()
        values["weights"] = {"file": str(WEIGHTS_FILE), "sha256": _sha256(staging / WEIGHTS_FILE)}
        _write_json(staging / DESCRIPTION_FILE, values)
        _write_json(staging / METADATA_FILE, metadata(description))
        _write_json(staging / INFERENCE_FILE, inference_config(description))
        (staging / README_FILE).write_text(bundle_readme(description))
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("Model written to %s", folder)
    return folder


def read_description(folder: Path) -> ModelDescription:
    """Read and check `configs/hpo.json` of a model folder."""
    folder = Path(folder)
    path = folder / DESCRIPTION_FILE
    if not path.is_file():
        msg = f"{folder} is not an hpo model folder: {DESCRIPTION_FILE} is missing. Create one with 'hpo export'."
        raise BundleError(msg)
    try:
        values = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        msg = f"{path} is not readable JSON: {error}"
        raise BundleError(msg) from error
    return ModelDescription.from_dict(values, path)


def load_bundle(folder: Path, device: torch.device | str = "cpu") -> LoadedModel:
    """Read a model folder and build its network with the weights, checking the weights' checksum."""
    folder = Path(folder)
    description = read_description(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        msg = f"{folder}: weights file {WEIGHTS_FILE} is missing; export the model again."
        raise BundleError(msg)
    expected = json.loads((folder / DESCRIPTION_FILE).read_text()).get("weights", {}).get("sha256")
    if expected and _sha256(weights) != expected:
        msg = f"{weights}: checksum does not match the one in {DESCRIPTION_FILE}; the file is damaged or was replaced."
        raise BundleError(msg)
    network = _network_with_weights(description.network, weights).to(device).eval()
    return LoadedModel(folder, description, network)


def _network_with_weights(settings: NetworkSettings, weights: Path) -> nn.Module:
    network = build_network(settings)
    try:
        return load_weights(network, weights)
    except (RuntimeError, OSError, ValueError, EOFError, pickle.UnpicklingError) as error:
        # torch.load(weights_only=True) raises UnpicklingError for content other than tensors.
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        msg = f"{weights} does not load into a {settings.architecture} with channels {list(settings.channels)}: {first_line}"
        raise BundleError(msg) from error


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, values: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values, indent=2) + "\n")
