"""`hpo data import-2d`: real TG3K frames and generated pictures with every problem the import must report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from hpo.cli.main import main
from hpo.data.importers.import_2d import PictureImportSettings, import_pictures
from hpo.data.importers.pictures import picture_to_nifti, volume_to_frame
from hpo.data.layouts import read_dataset
from hpo.errors import DatasetError
from tests.conftest import SHARED_DATA

TG3K = SHARED_DATA / "tg3k-thyroid-us"
TRAIN_FRAMES = ("0001", "0002", "0003", "0004")
VAL_FRAMES = ("0000", "0014")


@pytest.fixture
def tg3k_subset(tmp_path: Path) -> Path:
    """Six real TG3K frames with their JPEG masks, in the dataset's own train/ and val/ layout."""
    if not (TG3K / "images" / "train").is_dir():
        pytest.skip(f"real TG3K data not found at {TG3K}")
    root = tmp_path / "tg3k"
    for split, names in (("train", TRAIN_FRAMES), ("val", VAL_FRAMES)):
        for kind in ("images", "masks"):
            (root / kind / split).mkdir(parents=True)
            for name in names:
                shutil.copy(TG3K / kind / split / f"{name}.jpg", root / kind / split / f"{name}.jpg")
    return root


def write_picture(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def frame_pair(root: Path, name: str, size=(24, 32), mask_value: int = 255) -> None:
    rng = np.random.default_rng(len(name))
    image = rng.integers(0, 255, size, dtype=np.uint8)
    mask = np.zeros(size, dtype=np.uint8)
    mask[5:12, 6:15] = mask_value
    write_picture(root / "images" / f"{name}.png", image)
    write_picture(root / "masks" / f"{name}.png", mask)


def test_tg3k_frames_become_single_slice_volumes(tg3k_subset, tmp_path):
    out = tmp_path / "dataset"
    report = import_pictures(tg3k_subset / "images", tg3k_subset / "masks", out, PictureImportSettings(structure="thyroid"))

    assert report.imported == 6
    assert report.splits == {"train": 4, "val": 2}
    info = read_dataset(out)
    assert info.labels == {0: "background", 1: "thyroid"}
    case = next(case for case in info.cases if case.case_id == "train_0001")
    assert case.metadata["split"] == "train"
    assert case.metadata["source"] == "train/0001.jpg"

    image = nib.load(case.images[0])
    label = nib.load(case.label)
    assert image.shape == (256, 256, 1)
    assert label.shape == (256, 256, 1)
    assert np.allclose(image.affine, label.affine)


def test_tg3k_colour_and_lossy_mask_converted(tg3k_subset, tmp_path):
    out = tmp_path / "dataset"
    import_pictures(tg3k_subset / "images", tg3k_subset / "masks", out, PictureImportSettings())

    rgb = Image.open(tg3k_subset / "images" / "train" / "0001.jpg")
    assert rgb.mode == "RGB"
    grey = np.asarray(rgb.convert("L"))
    frame = volume_to_frame(np.asarray(nib.load(out / "imagesTr" / "train_0001.nii.gz").dataobj))
    assert np.array_equal(frame, grey)

    jpeg_mask = np.asarray(Image.open(tg3k_subset / "masks" / "train" / "0001.jpg"))
    assert len(np.unique(jpeg_mask)) > 2  # lossy: values near, not at, 0 and 255
    label = volume_to_frame(np.asarray(nib.load(out / "labelsTr" / "train_0001.nii.gz").dataobj))
    assert set(np.unique(label)) == {0, 1}
    assert np.array_equal(label, (jpeg_mask >= 128).astype(np.uint8))


def test_tg3k_downsample_scales_spacing(tg3k_subset, tmp_path):
    out = tmp_path / "dataset"
    settings = PictureImportSettings(spacing=(0.1, 0.1), downsample=2)
    import_pictures(tg3k_subset / "images", tg3k_subset / "masks", out, settings)

    image = nib.load(out / "imagesTr" / "val_0014.nii.gz")
    assert image.shape == (128, 128, 1)
    assert np.allclose(np.diag(image.affine)[:2], (0.2, 0.2))
    label = np.asarray(nib.load(out / "labelsTr" / "val_0014.nii.gz").dataobj)
    full = np.asarray(Image.open(tg3k_subset / "masks" / "val" / "0014.jpg")) >= 128
    assert abs(int(label.sum()) * 4 - int(full.sum())) < 0.05 * full.sum()


def test_every_problem_reported_together(tmp_path):
    frame_pair(tmp_path, "good")
    frame_pair(tmp_path, "empty", mask_value=0)
    write_picture(tmp_path / "images" / "lonely.png", np.zeros((8, 8), np.uint8))
    write_picture(tmp_path / "masks" / "orphan.png", np.zeros((8, 8), np.uint8))
    write_picture(tmp_path / "images" / "small.png", np.zeros((8, 8), np.uint8))
    write_picture(tmp_path / "masks" / "small.png", np.full((8, 9), 255, np.uint8))
    (tmp_path / "images" / "broken.png").write_bytes(b"not a picture")
    frame_pair(tmp_path, "broken_mask_pair")
    (tmp_path / "masks" / "broken.png").write_bytes(b"not a picture")

    with pytest.raises(DatasetError, match="5 problems found, nothing imported") as caught:
        import_pictures(tmp_path / "images", tmp_path / "masks", tmp_path / "out", PictureImportSettings())

    message = str(caught.value)
    assert "lonely.png: no mask found" in message
    assert "orphan.png: mask without an image" in message
    assert "empty.png: empty mask" in message
    assert "small.png: size 9 x 8 differs from image small.png size 8 x 8" in message
    assert "broken.png: unreadable as a picture" in message
    assert not list((tmp_path / "out" / "imagesTr").glob("*.nii.gz"))
    assert not (tmp_path / "out" / "dataset.json").exists()


def test_skip_problems_imports_the_rest(tmp_path):
    frame_pair(tmp_path, "good")
    frame_pair(tmp_path, "empty", mask_value=0)

    report = import_pictures(tmp_path / "images", tmp_path / "masks", tmp_path / "out", PictureImportSettings(skip_problems=True))

    assert report.imported == 1
    assert len(report.skipped) == 1
    assert [case.case_id for case in read_dataset(tmp_path / "out").cases] == ["good"]


@pytest.mark.parametrize(
    ("mask_value", "settings", "message"),
    [
        # a 0/1 mask saved losslessly: the default threshold of 128 finds nothing, and the message names the threshold that fits
        (1, PictureImportSettings(), r"its maximum is 1: for masks stored as 0 and 1, pass --threshold 0\.5"),
        # an all-background mask is an error unless empty frames are allowed
        (0, PictureImportSettings(), r"empty mask, no pixel reaches --threshold 128; pass --allow-empty"),
    ],
)
def test_empty_mask_message(tmp_path, mask_value, settings, message):
    frame_pair(tmp_path, "frame", mask_value=mask_value)
    with pytest.raises(DatasetError, match=message):
        import_pictures(tmp_path / "images", tmp_path / "masks", tmp_path / "out", settings)


def test_binary_mask_with_low_threshold(tmp_path):
    frame_pair(tmp_path, "frame", mask_value=1)
    import_pictures(tmp_path / "images", tmp_path / "masks", tmp_path / "out", PictureImportSettings(threshold=0.5))
    label = np.asarray(nib.load(tmp_path / "out" / "labelsTr" / "frame.nii.gz").dataobj)
    assert int(label.sum()) == 7 * 9


def make_picture(values: np.ndarray, mode: str) -> Image.Image:
    if mode == "I;16":
        return Image.fromarray(values.astype(np.uint16) * 300)
    picture = Image.fromarray(values)
    return picture if mode == "L" else picture.convert(mode)


@pytest.mark.parametrize(
    ("suffix", "mode", "dtype"),
    [
        (".png", "RGB", np.uint8),     # colour PNG
        (".gif", "P", np.uint8),       # palette GIF
        (".bmp", "L", np.uint8),       # grey bitmap
        (".tif", "I;16", np.float32),  # 16-bit grey TIFF keeps its values, as float32
        (".jpeg", "L", np.uint8),      # lossy grey JPEG
    ],
)
def test_picture_formats(tmp_path, suffix, mode, dtype):
    values = (np.arange(20 * 30).reshape(20, 30) % 200).astype(np.uint8)
    path = tmp_path / f"frame{suffix}"
    make_picture(values, mode).save(path)

    volume = picture_to_nifti(path)
    frame = volume_to_frame(np.asarray(volume.dataobj))
    assert volume.shape == (30, 20, 1)
    assert frame.dtype == dtype
    if suffix in (".png", ".bmp", ".gif"):
        assert np.abs(frame.astype(int) - values).max() <= 1
    if suffix == ".tif":
        assert frame.max() == int(values.max()) * 300


def test_group_pattern_recorded(tmp_path):
    for name in ("video01_f001", "video01_f002", "video02_f001"):
        frame_pair(tmp_path, name)
    settings = PictureImportSettings(group_pattern=r"(?P<group>video\d+)_")
    import_pictures(tmp_path / "images", tmp_path / "masks", tmp_path / "out", settings)

    groups = {case.case_id: case.metadata["group"] for case in read_dataset(tmp_path / "out").cases}
    assert groups == {"video01_f001": "video01", "video01_f002": "video01", "video02_f001": "video02"}


def test_group_pattern_mismatch_reported(tmp_path):
    frame_pair(tmp_path, "frame")
    with pytest.raises(DatasetError, match=r"'frame' does not match --group-pattern"):
        import_pictures(tmp_path / "images", tmp_path / "masks", tmp_path / "out", PictureImportSettings(group_pattern=r"video\d+"))


def test_images_without_masks_go_to_imagests(tmp_path):
    frame_pair(tmp_path, "new")
    report = import_pictures(tmp_path / "images", None, tmp_path / "out", PictureImportSettings())

    assert report.unlabelled == 1
    manifest = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert manifest["test"] == ["./imagesTs/new.nii.gz"]
    assert manifest["training"] == []


def test_mask_suffix_pairs_names(tmp_path):
    frame_pair(tmp_path, "frame")
    (tmp_path / "masks" / "frame.png").rename(tmp_path / "masks" / "frame_mask.png")
    report = import_pictures(tmp_path / "images", tmp_path / "masks", tmp_path / "out", PictureImportSettings(mask_suffix="_mask"))
    assert report.imported == 1


def test_existing_dataset_needs_overwrite(tmp_path):
    frame_pair(tmp_path, "frame")
    import_pictures(tmp_path / "images", tmp_path / "masks", tmp_path / "out", PictureImportSettings())
    with pytest.raises(DatasetError, match="already exists; choose another --out folder or pass --overwrite"):
        import_pictures(tmp_path / "images", tmp_path / "masks", tmp_path / "out", PictureImportSettings())
    import_pictures(tmp_path / "images", tmp_path / "masks", tmp_path / "out", PictureImportSettings(overwrite=True))


def test_cli_import_2d(tg3k_subset, tmp_path, capsys):
    code = main([
        "data", "import-2d", "--images", str(tg3k_subset / "images"), "--masks", str(tg3k_subset / "masks"),
        "--out", str(tmp_path / "out"), "--structure", "thyroid", "--spacing", "0.1", "--downsample", "4",
    ])
    assert code == 0
    assert "Imported 6 labelled frames (train: 4, val: 2)" in capsys.readouterr().out
    assert nib.load(tmp_path / "out" / "imagesTr" / "val_0000.nii.gz").shape == (64, 64, 1)


def test_cli_reports_problems(tmp_path, capsys):
    frame_pair(tmp_path, "empty", mask_value=0)
    code = main(["data", "import-2d", "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks"), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "empty mask" in capsys.readouterr().err


def test_case_id_clash_reported(tmp_path):
    frame_pair(tmp_path, "a/b")
    frame_pair(tmp_path, "a_b")
    with pytest.raises(DatasetError, match=r"case identifier 'a_b' is the same as that of"):
        import_pictures(tmp_path / "images", tmp_path / "masks", tmp_path / "out", PictureImportSettings())


def test_export_2d_round_trip(tg3k_subset, tmp_path, capsys):
    import_pictures(tg3k_subset / "images", tg3k_subset / "masks", tmp_path / "dataset", PictureImportSettings())
    code = main(["data", "export-2d", "--labels", str(tmp_path / "dataset" / "labelsTr"), "--out", str(tmp_path / "pngs")])

    assert code == 0
    assert len(list((tmp_path / "pngs").glob("*.png"))) == 6
    exported = np.asarray(Image.open(tmp_path / "pngs" / "val_0014.png"))
    original = np.asarray(Image.open(tg3k_subset / "masks" / "val" / "0014.jpg")) >= 128
    assert np.array_equal(exported, original.astype(np.uint8) * 255)


def test_export_2d_rejects_3d_volume(tmp_path, capsys):
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 3), np.uint8), np.eye(4)), tmp_path / "volume.nii.gz")
    assert main(["data", "export-2d", "--labels", str(tmp_path / "volume.nii.gz"), "--out", str(tmp_path / "pngs")]) == 2
    assert "is not a single-slice volume" in capsys.readouterr().err
