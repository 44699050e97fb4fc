"""2D studies end to end on real TG3K thyroid frames: import, train, validate, prune, export and predict."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from optuna.trial import TrialState

from hpo.cli.main import main
from hpo.config import parse_config
from hpo.config.loader import resolve_paths
from hpo.data.importers.import_2d import PictureImportSettings, import_pictures
from hpo.data.study_data import load_study_data
from hpo.errors import ConfigError, DatasetError
from hpo.study.runner import open_study, run_worker
from tests.conftest import SHARED_DATA, write_config

TG3K = SHARED_DATA / "tg3k-thyroid-us"
VAL_FRAMES = ["0000", "0014", "0017"]


def first_train_frames(count: int = 12) -> list[str]:
    return sorted(path.stem for path in (TG3K / "images" / "train").glob("*.jpg"))[:count]


@pytest.fixture(scope="module")
def thyroid_dataset(tmp_path_factory) -> Path:
    """Fifteen real TG3K frames imported at 64 x 64 pixels, keeping the train/val split of the source."""
    if not (TG3K / "images" / "train").is_dir():
        pytest.skip(f"real TG3K data not found at {TG3K}")
    source = tmp_path_factory.mktemp("tg3k")
    for split, names in (("train", first_train_frames()), ("val", VAL_FRAMES)):
        for kind in ("images", "masks"):
            (source / kind / split).mkdir(parents=True)
            for name in names:
                shutil.copy(TG3K / kind / split / f"{name}.jpg", source / kind / split)
    out = source / "dataset"
    settings = PictureImportSettings(structure="thyroid", downsample=4, group_pattern=r"/(\d{3})")
    import_pictures(source / "images", source / "masks", out, settings)
    return out


def study_dict(dataset: Path, runs: Path, **sections) -> dict:
    config = {
        "study": {"name": "thyroid2d", "output_dir": str(runs)},
        "data": {"path": str(dataset), "folds": {"by": "split", "training": ["train"], "validation": ["val"]}},
        "model": {"spatial_dims": 2, "patch_size": [64, 64], "channels": [8, 16, 32], "num_res_units": 0},
        "search_space": {
            "learning_rate": {"low": 1e-7, "high": 1e-2, "log": True},
            "epochs": {"value": 3},
            "batch_size": {"value": 4},
            "foreground_ratio": {"value": 0.5},
        },
        "sampler": {"name": "tpe", "seed": 0},
        "pruner": {"name": "median", "n_startup_trials": 1, "n_warmup_steps": 1},
        "budget": {"n_trials": 2},
        "training": {"device": "cpu", "iterations_per_epoch": 8, "seed": 0},
    }
    for section, values in sections.items():
        config[section].update(values)
    return config


def test_recorded_split_used(thyroid_dataset, tmp_path):
    config = resolve_paths(parse_config(study_dict(thyroid_dataset, tmp_path)), tmp_path)
    data = load_study_data(config.data, spatial_dims=2)

    assert sorted(case.case_id for case in data.validation) == [f"val_{name}" for name in VAL_FRAMES]
    assert len(data.training) == 12
    assert data.training[0].image.shape == (1, 64, 64)
    assert data.training[0].foreground.shape[1] == 2


def test_group_split_keeps_groups_apart(thyroid_dataset, tmp_path):
    config = study_dict(thyroid_dataset, tmp_path)
    config["data"] = {"path": str(thyroid_dataset), "group_by": "group", "validation_fraction": 0.3, "split_seed": 1}
    data = load_study_data(resolve_paths(parse_config(config), tmp_path).data, spatial_dims=2)

    def groups(cases):
        return {case.case_id.split("_")[1][:3] for case in cases}

    assert groups(data.training)
    assert groups(data.validation)
    assert not groups(data.training) & groups(data.validation)


@pytest.mark.parametrize(
    ("folds", "error", "message"),
    [
        # a split value that the dataset does not have leaves validation empty
        ({"by": "split", "training": ["train"], "validation": ["test"]}, DatasetError, r"gives 12 training and 0 validation cases; the dataset has the values \['train', 'val'\]"),
        # a key that the entries do not carry
        ({"by": "video", "training": ["a"], "validation": ["b"]}, DatasetError, r"data\.folds\.by is 'video' but 15 cases have no such key"),
        # one value on both sides
        ({"by": "split", "training": ["train"], "validation": ["train"]}, ConfigError, r"values of 'split' \['train'\] are in both training and validation"),
    ],
)
def test_recorded_split_errors(thyroid_dataset, tmp_path, folds, error, message):
    with pytest.raises(error, match=message):
        config = resolve_paths(parse_config(study_dict(thyroid_dataset, tmp_path, data={"folds": folds})), tmp_path)
        load_study_data(config.data, spatial_dims=2)


def test_2d_study_prunes_export_predict(thyroid_dataset, tmp_path, capsys):
    config_path = write_config(tmp_path / "thyroid.yaml", study_dict(thyroid_dataset, tmp_path / "runs"))
    config = resolve_paths(parse_config(study_dict(thyroid_dataset, tmp_path / "runs")), tmp_path)
    study = open_study(config).study
    study.enqueue_trial({"learning_rate": 1e-2})
    study.enqueue_trial({"learning_rate": 1e-7})  # learns nothing, so the median pruner stops it
    study = run_worker(config)

    first, second = study.trials
    assert first.state == TrialState.COMPLETE
    assert set(first.user_attrs["dice_per_structure"]) == {"thyroid"}
    assert first.value > 0.2
    assert len(first.intermediate_values) == 3
    assert Path(first.user_attrs["checkpoint"]).is_file()
    assert second.state == TrialState.PRUNED
    assert len(second.intermediate_values) == 2

    model_dir = tmp_path / "model"
    assert main(["export", str(config_path), "--out", str(model_dir)]) == 0
    # a new frame, as a user brings it: a JPEG picture, imported without a mask at the training resolution
    (tmp_path / "pictures").mkdir()
    shutil.copy(TG3K / "images" / "val" / "0014.jpg", tmp_path / "pictures")
    import_pictures(tmp_path / "pictures", None, tmp_path / "new", PictureImportSettings(downsample=4))
    frame = tmp_path / "new" / "imagesTs" / "0014.nii.gz"
    prediction = tmp_path / "val_0014_seg.nii.gz"
    assert main(["predict", "--model", str(model_dir), "--input", str(frame), "--output", str(prediction), "--device", "cpu"]) == 0

    predicted = nib.load(prediction)
    reference = nib.load(thyroid_dataset / "labelsTr" / "val_0014.nii.gz")
    assert predicted.shape == (64, 64, 1)
    assert np.allclose(predicted.affine, reference.affine)
    labels = np.asarray(predicted.dataobj)
    truth = np.asarray(reference.dataobj)
    assert set(np.unique(labels)) <= {0, 1}
    dice = 2 * np.sum((labels == 1) & (truth == 1)) / (np.sum(labels == 1) + np.sum(truth == 1))
    assert dice > 0.2
