"""Shared fixtures: the real data folders, tiny study configs and generated NIfTI datasets."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
HIPPOCAMPUS = SHARED_DATA / "hippocampus-mri"


@pytest.fixture
def hippocampus_dir() -> Path:
    if not (HIPPOCAMPUS / "dataset.json").is_file():
        pytest.skip(f"real hippocampus data not found at {HIPPOCAMPUS}")
    return HIPPOCAMPUS


def tiny_study_dict(data_path: Path, output_dir: Path, **overrides) -> dict:
    """A study that trains in seconds: a few real cases, small patches, a narrow U-Net, 2 epochs."""
    config = {
        "study": {"name": "tiny", "output_dir": str(output_dir)},
        "data": {"path": str(data_path), "max_cases": 8, "validation_fraction": 0.25, "split_seed": 0},
        "model": {"spatial_dims": 3, "patch_size": [16, 16, 16], "channels": [8, 16], "num_res_units": 0},
        "search_space": {
            "learning_rate": {"low": 1e-3, "high": 1e-2, "log": True},
            "epochs": {"value": 2},
            "batch_size": {"choices": [2, 4]},
        },
        "sampler": {"name": "tpe", "seed": 0},
        "pruner": {"name": "median", "n_startup_trials": 1, "n_warmup_steps": 0},
        "budget": {"n_trials": 2},
        "training": {"device": "cpu", "iterations_per_epoch": 3, "seed": 0},
    }
    for section, values in overrides.items():
        config.setdefault(section, {}).update(values)
    return config


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def tiny_config_path(tmp_path: Path, hippocampus_dir: Path) -> Path:
    return write_config(tmp_path / "tiny.yaml", tiny_study_dict(hippocampus_dir, tmp_path / "runs"))


def make_volume(shape=(20, 24, 16), labels=(1, 2), seed=0) -> tuple[np.ndarray, np.ndarray]:
    """A noisy image with one bright box per label value, and its label map."""
    rng = np.random.default_rng(seed)
    image = rng.normal(100.0, 10.0, shape).astype(np.float32)
    label = np.zeros(shape, dtype=np.uint8)
    for index, value in enumerate(labels):
        corner = [2 + 6 * index, 3, 3]
        box = tuple(slice(c, c + 4) for c in corner)
        label[box] = value
        image[box] += 80.0
    return image, label


def write_decathlon(root: Path, n_cases: int = 4, affine: np.ndarray | None = None) -> Path:
    """A small generated dataset in the Decathlon layout."""
    affine = np.eye(4) if affine is None else affine
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    training = []
    for index in range(n_cases):
        image, label = make_volume(seed=index)
        name = f"case_{index:03d}.nii.gz"
        nib.save(nib.Nifti1Image(image, affine), root / "imagesTr" / name)
        nib.save(nib.Nifti1Image(label, affine), root / "labelsTr" / name)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    manifest = {"labels": {"0": "background", "1": "left", "2": "right"}, "modality": {"0": "MRI"}, "training": training}
    (root / "dataset.json").write_text(json.dumps(manifest))
    return root


def write_nnunet(root: Path, n_cases: int = 4, channels: int = 2) -> Path:
    """A small generated dataset in the nnU-Net v2 layout with `channels` image files per case."""
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for index in range(n_cases):
        image, label = make_volume(seed=index)
        for channel in range(channels):
            nib.save(nib.Nifti1Image(image * (channel + 1), np.eye(4)), root / "imagesTr" / f"pat{index}_{channel:04d}.nii.gz")
        nib.save(nib.Nifti1Image(label, np.eye(4)), root / "labelsTr" / f"pat{index}.nii.gz")
    manifest = {
        "channel_names": {str(c): f"channel{c}" for c in range(channels)},
        "labels": {"background": 0, "left": 1, "right": 2},
        "numTraining": n_cases,
        "file_ending": ".nii.gz",
    }
    (root / "dataset.json").write_text(json.dumps(manifest))
    return root
