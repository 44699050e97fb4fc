"""The training loop alone, without Optuna: it learns, keeps the best weights and stops on request."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hpo.config.schema import DataSection
from hpo.data.cache import PreparedCase
from hpo.data.study_data import StudyData, load_study_data
from hpo.models import NetworkSettings, build_network
from hpo.training import NonFiniteLossError, TrainingConfig, train
from hpo.training.checkpoint import load_weights


def tiny_training_config(tmp_path, **changes) -> TrainingConfig:
    values = {
        "network": NetworkSettings("unet", 3, 1, 3, (8, 16), num_res_units=0),
        "patch_size": (16, 16, 16),
        "learning_rate": 5e-3,
        "epochs": 3,
        "batch_size": 2,
        "iterations_per_epoch": 4,
        "device": "cpu",
        "output_dir": tmp_path / "trial",
    }
    values.update(changes)
    return TrainingConfig(**values)


@pytest.fixture(scope="module")
def small_data(tmp_path_factory, request) -> StudyData:
    from tests.conftest import HIPPOCAMPUS

    if not (HIPPOCAMPUS / "dataset.json").is_file():
        pytest.skip(f"real hippocampus data not found at {HIPPOCAMPUS}")
    cache = tmp_path_factory.mktemp("cache")
    return load_study_data(DataSection(path=str(HIPPOCAMPUS), max_cases=6, cache_dir=str(cache)), spatial_dims=3)


class StopAfter:
    """A reporter that records each epoch and requests a stop after `epochs` of them."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs
        self.records = []

    def report(self, record) -> None:
        self.records.append(record)

    def should_stop(self) -> bool:
        return len(self.records) >= self.epochs


def test_train_keeps_best_checkpoint(tmp_path, small_data):
    reporter = StopAfter(epochs=99)
    result = train(tiny_training_config(tmp_path), small_data, reporter)

    assert result.epochs_run == 3
    assert [record.epoch for record in reporter.records] == [1, 2, 3]
    assert result.best_dice == pytest.approx(max(result.mean_dices))
    assert result.best_epoch == int(np.argmax(result.mean_dices)) + 1
    assert len(result.best_dice_per_structure) == 2
    assert result.train_losses[-1] < result.train_losses[0], "the loss should fall over three epochs"
    assert result.checkpoint.is_file()
    assert not list(result.checkpoint.parent.glob(".*")), "no temporary file may remain"
    model = load_weights(build_network(tiny_training_config(tmp_path).network), result.checkpoint)
    assert isinstance(model, torch.nn.Module)


def test_reporter_stops_training(tmp_path, small_data):
    result = train(tiny_training_config(tmp_path, epochs=5), small_data, StopAfter(epochs=2))
    assert result.stopped_early
    assert result.epochs_run == 2


def test_same_seed_same_losses(tmp_path, small_data):
    config = tiny_training_config(tmp_path, epochs=1, output_dir=None)
    assert train(config, small_data).train_losses == train(config, small_data).train_losses


def test_non_finite_loss_raises(tmp_path, small_data):
    poisoned = [
        PreparedCase(case.case_id, np.full_like(case.image, np.nan), case.label, case.foreground)
        for case in small_data.training
    ]
    data = StudyData(small_data.info, small_data.preprocessing, poisoned, small_data.validation)
    with pytest.raises(NonFiniteLossError, match="training loss is nan at step 1"):
        train(tiny_training_config(tmp_path), data)


@pytest.mark.parametrize("architecture", ["attention_unet", "dynunet"])
def test_other_architectures_train(tmp_path, small_data, architecture):
    network = NetworkSettings(architecture, 3, 1, 3, (8, 16, 32), num_res_units=0, deep_supervision=architecture == "dynunet")
    result = train(tiny_training_config(tmp_path, network=network, epochs=1, loss="dice_focal"), small_data)
    assert 0.0 <= result.best_dice <= 1.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"epochs": 0}, "must be positive"), ({"learning_rate": 0.0}, "learning_rate must be positive"),
     ({"patch_size": (16, 16)}, r"patch_size \(16, 16\) needs 3 values")],
)
def test_training_config_rejects(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        tiny_training_config(tmp_path, **changes)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised when no GPU is visible")
def test_cuda_without_gpu_is_config_error():
    from hpo.errors import ConfigError
    from hpo.training.trainer import resolve_device

    with pytest.raises(ConfigError, match=r"device 'cuda' was requested but no CUDA GPU is visible; use 'auto' or 'cpu'"):
        resolve_device("cuda")


def test_label_gap_scores_declared_structures(tmp_path):
    """Labels 0, 1, 2, 4: three structures are scored, and the unused value 3 is not counted."""
    import json

    import nibabel as nib

    from tests.conftest import make_volume

    root = tmp_path / "set"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    training = []
    for index in range(4):
        image, label = make_volume(shape=(24, 24, 16), labels=(1, 2, 4), seed=index)
        name = f"case_{index}.nii.gz"
        nib.save(nib.Nifti1Image(image, np.eye(4)), root / "imagesTr" / name)
        nib.save(nib.Nifti1Image(label, np.eye(4)), root / "labelsTr" / name)
        training.append({"image": f"imagesTr/{name}", "label": f"labelsTr/{name}"})
    labels = {"0": "background", "1": "a", "2": "b", "4": "d"}
    (root / "dataset.json").write_text(json.dumps({"labels": labels, "training": training}))
    data = load_study_data(DataSection(path=str(root), cache_dir=str(tmp_path / "cache"), validation_fraction=0.25), 3)

    network = NetworkSettings("unet", 3, 1, data.num_classes, (8, 16), num_res_units=0)
    result = train(tiny_training_config(tmp_path, network=network, epochs=1), data)
    assert data.structure_values == [1, 2, 4]
    assert len(result.best_dice_per_structure) == 3
    assert len(result.best_hausdorff95_per_structure) == 3
    assert result.best_dice == pytest.approx(np.mean(result.best_dice_per_structure))
