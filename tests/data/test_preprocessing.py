"""Reorientation, per-volume normalisation and the preprocessing cache."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from hpo.data.cache import prepare_cases
from hpo.data.layouts import read_dataset
from hpo.data.preprocessing import PreprocessingSettings, load_image, load_label, normalise, restore_orientation
from tests.conftest import make_volume, write_decathlon


def test_reorient_lps_matches_ras(tmp_path):
    image, label = make_volume()
    nib.save(nib.Nifti1Image(image, np.eye(4)), tmp_path / "ras.nii.gz")
    lps = nib.Nifti1Image(image[::-1, ::-1], np.diag([-1.0, -1.0, 1.0, 1.0]))
    nib.save(lps, tmp_path / "lps.nii.gz")

    from_ras, codes_ras = load_image((tmp_path / "ras.nii.gz",), PreprocessingSettings())
    from_lps, codes_lps = load_image((tmp_path / "lps.nii.gz",), PreprocessingSettings())
    assert codes_ras == ("R", "A", "S")
    assert codes_lps == ("L", "P", "S")
    np.testing.assert_allclose(from_ras, from_lps, atol=1e-5)


def test_restore_orientation_round_trip(tmp_path):
    _, label = make_volume()
    nib.save(nib.Nifti1Image(label, np.diag([-1.0, 1.0, -1.0, 1.0])), tmp_path / "lai.nii.gz")
    settings = PreprocessingSettings()
    in_ras = load_label(tmp_path / "lai.nii.gz", settings)
    restored = restore_orientation(in_ras, settings.orientation, ("L", "A", "I"))
    np.testing.assert_array_equal(restored, label)


def test_normalise_removes_scale(hippocampus_dir):
    """uint8 volumes and float32 volumes hundreds of times brighter end on the same scale."""
    info = read_dataset(hippocampus_dir)
    maxima = {}
    for case in info.cases[:60]:
        header = nib.load(case.images[0])
        maxima.setdefault(str(header.get_data_dtype()), case)
    assert {"uint8", "float32"} <= set(maxima), "expected both uint8 and float32 images among the first cases"
    for case in maxima.values():
        volume, _ = load_image(case.images, PreprocessingSettings())
        assert abs(float(volume.mean())) < 1e-3
        assert abs(float(volume.std()) - 1.0) < 1e-3


def test_normalise_constant_channel():
    constant = np.full((1, 4, 4, 4), 7.0, dtype=np.float32)
    assert np.all(normalise(constant, (0.5, 99.5)) == 0.0)


def test_cache_reused_then_rebuilt(tmp_path, caplog):
    root = write_decathlon(tmp_path / "set", n_cases=2)
    info = read_dataset(root)
    settings = PreprocessingSettings()
    cache = tmp_path / "cache"

    with caplog.at_level("INFO", logger="hpo.data.cache"):
        first = prepare_cases(info, list(info.cases), settings, cache)
    assert "Preprocessed 2 cases" in caplog.text
    entries = sorted(cache.glob("*.npz"))
    assert len(entries) == 2

    caplog.clear()
    with caplog.at_level("INFO", logger="hpo.data.cache"):
        second = prepare_cases(info, list(info.cases), settings, cache)
    assert "Preprocessed" not in caplog.text
    np.testing.assert_array_equal(first[0].image, second[0].image)

    image, label = make_volume(seed=9)
    nib.save(nib.Nifti1Image(label, np.eye(4)), root / "labelsTr" / "case_000.nii.gz")
    prepare_cases(info, list(info.cases), settings, cache)
    assert len(sorted(cache.glob("*.npz"))) == 3, "a changed label file must give a new cache entry"
    assert not list(cache.glob(".*")), "no temporary file may remain"


def test_cache_holds_foreground_coordinates(tmp_path):
    info = read_dataset(write_decathlon(tmp_path / "set", n_cases=1))
    prepared = prepare_cases(info, list(info.cases), PreprocessingSettings(), tmp_path / "cache")[0]
    assert len(prepared.foreground) == int((prepared.label > 0).sum())
    assert np.all(prepared.label[tuple(prepared.foreground.T)] > 0)


@pytest.mark.parametrize("spatial_dims", [2])
def test_2d_model_rejects_3d_volume(tmp_path, spatial_dims):
    from hpo.errors import DatasetError

    image, _ = make_volume()
    nib.save(nib.Nifti1Image(image, np.eye(4)), tmp_path / "vol.nii.gz")
    with pytest.raises(DatasetError, match=r"vol\.nii\.gz: spatial shape \(20, 24, 16\) does not fit a 2D model"):
        load_image((tmp_path / "vol.nii.gz",), PreprocessingSettings(spatial_dims=spatial_dims))
