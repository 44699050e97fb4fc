"""`hpo data import-structures`: real per-organ NRRD masks, label tables, grid checks and overlap rules."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pytest

from hpo.cli.main import main
from hpo.data.importers.head_neck_phantom import main as phantom_main
from hpo.data.importers.label_table import load_label_table
from hpo.data.importers.structures import CaseSource, StructureImportSettings, find_cases, import_structures
from hpo.data.layouts import read_dataset
from hpo.errors import DatasetError
from tests.conftest import SHARED_DATA

HN_MASKS = SHARED_DATA / "hn-oar-masks"
REAL_CASE = "0522c0014"  # the smallest scan: 512 x 512 x 159
LABEL_TABLE = Path(__file__).resolve().parents[2] / "study_configs" / "label_tables" / "head_neck.yaml"
LPS_DIRECTIONS = np.diag([0.5, 0.5, 2.0])


@pytest.fixture(scope="module")
def real_case(tmp_path_factory) -> tuple[Path, Path]:
    """A head-and-neck-like CT volume around the orbits of one real case, and that case's real masks folder."""
    masks = HN_MASKS / REAL_CASE / "segmentations"
    if not masks.is_dir():
        pytest.skip(f"real head-and-neck masks not found at {masks}")
    # the generator's command line, as the README runs it, on a folder that contains one real case
    masks_root = tmp_path_factory.mktemp("masks")
    (masks_root / REAL_CASE).symlink_to(HN_MASKS / REAL_CASE, target_is_directory=True)
    out = tmp_path_factory.mktemp("ct")
    assert phantom_main(["--masks", str(masks_root), "--out", str(out)]) == 0
    return out / REAL_CASE / "image.nrrd", masks


def write_nrrd(path: Path, data: np.ndarray, origin=(0.0, 0.0, 0.0), directions=LPS_DIRECTIONS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"space": "left-posterior-superior", "space directions": directions, "space origin": np.array(origin, float)}
    nrrd.write(str(path), data, header)
    return path


def box_mask(shape=(12, 10, 6), box=(slice(2, 5), slice(3, 6), slice(1, 3))) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    mask[box] = 1
    return mask


def test_real_masks_merged_on_the_ct_grid(real_case, tmp_path):
    image, masks = real_case
    table = load_label_table(str(LABEL_TABLE))
    report = import_structures(find_cases(str(image), str(masks), REAL_CASE), table, tmp_path / "out", StructureImportSettings())

    assert report.labels == {0: "background", 1: "OpticNerve_L", 2: "OpticNerve_R"}
    assert report.missing == {REAL_CASE: ["Chiasm", "Thyroid"]}
    label = nib.load(tmp_path / "out" / "labelsTr" / f"{REAL_CASE}.nii.gz")
    values = np.asarray(label.dataobj)
    for value, organ in ((1, "Optic-Nerve-Lt"), (2, "Optic-Nerve-Rt")):
        original, header = nrrd.read(str(masks / f"{organ}.nrrd"))
        assert int((values == value).sum()) == int(original.sum())
        # the first voxel of the original mask lands on the same point in space (LPS to RAS)
        index = np.argwhere(original > 0)[0]
        ras = (header["space origin"] + index @ header["space directions"]) * [-1, -1, 1]
        voxel = np.rint(np.linalg.solve(label.affine, np.r_[ras, 1.0])[:3]).astype(int)
        assert values[tuple(voxel)] == value


def test_real_case_nerves_close_to_surroundings(real_case):
    image, masks = real_case
    ct, _ = nrrd.read(str(image))
    assert ct.shape[2] < 40  # cropped around the orbits
    nerve_mean = ct[make_nerve_mask(image, masks)].mean()
    assert 5 < nerve_mean - np.median(ct) < 40
    assert ct.std() > 15  # noise of the same size as the contrast


def make_nerve_mask(image: Path, masks: Path) -> np.ndarray:
    from hpo.data.importers.volumes import place_on_grid, read_volume

    ct = read_volume(image)
    return place_on_grid(read_volume(masks / "Optic-Nerve-Lt.nrrd"), ct) | place_on_grid(read_volume(masks / "Optic-Nerve-Rt.nrrd"), ct)


def test_nifti_mask_with_flipped_axes(tmp_path):
    image = write_nrrd(tmp_path / "case" / "image.nrrd", np.zeros((12, 10, 6), np.int16), origin=(10.0, -4.0, 3.0))
    mask = box_mask()
    # the same mask stored in RAS order, axes 0 and 1 reversed, as NIfTI writers often do
    affine = np.diag([0.5, 0.5, 2.0, 1.0])
    affine[:3, 3] = [-(10.0 + 11 * 0.5), -(-4.0 + 9 * 0.5), 3.0]
    flipped = np.ascontiguousarray(mask[::-1, ::-1, :])
    (tmp_path / "case" / "masks").mkdir()
    nib.save(nib.Nifti1Image(flipped, affine), tmp_path / "case" / "masks" / "Thyroid.nii.gz")

    table = load_label_table("Thyroid=4")
    import_structures(find_cases(str(image), str(tmp_path / "case" / "masks")), table, tmp_path / "out", StructureImportSettings())
    label = np.asarray(nib.load(tmp_path / "out" / "labelsTr" / "image.nii.gz").dataobj)
    assert np.array_equal(label, mask * 4)


def test_cropped_mask_placed_in_image(tmp_path):
    image = write_nrrd(tmp_path / "image.nrrd", np.zeros((12, 10, 6), np.int16))
    # a mask saved on a sub-grid, as 3D Slicer does: 4 x 4 x 3 voxels starting at voxel (3, 2, 1)
    small = np.zeros((4, 4, 3), np.uint8)
    small[1:3, 1:3, 1] = 1
    write_nrrd(tmp_path / "masks" / "Chiasm.nrrd", small, origin=(1.5, 1.0, 2.0))

    import_structures(find_cases(str(image), str(tmp_path / "masks")), load_label_table("Chiasm=3"), tmp_path / "out", StructureImportSettings())
    label = np.asarray(nib.load(tmp_path / "out" / "labelsTr" / "image.nii.gz").dataobj)
    assert np.argwhere(label == 3).min(axis=0).tolist() == [4, 3, 2]
    assert int((label == 3).sum()) == 4


def test_every_problem_reported_together(tmp_path):
    image = write_nrrd(tmp_path / "a" / "image.nrrd", np.zeros((12, 10, 6), np.int16))
    masks = tmp_path / "a" / "masks"
    write_nrrd(masks / "OpticNerve_L.nrrd", box_mask(), directions=np.diag([0.6, 0.5, 2.0]))           # other spacing
    write_nrrd(masks / "OpticNerve_R.nrrd", box_mask(), origin=(0.25, 0.0, 0.0))                      # half a voxel off
    write_nrrd(masks / "Chiasm.nrrd", box_mask(box=(slice(0, 2), slice(3, 5), slice(1, 2))), origin=(-4.0, 0.0, 0.0))  # outside
    write_nrrd(masks / "Thyroid.nrrd", np.zeros((12, 10, 6), np.uint8))                                # empty
    write_nrrd(masks / "Thyroid_copy.nrrd", box_mask())
    (masks / "Extra.nrrd").write_bytes(b"NRRD0004\nbroken")
    write_nrrd(tmp_path / "b" / "masks" / "Chiasm.nrrd", box_mask())                                   # case b has no image

    table = load_label_table("OpticNerve_L=1,OpticNerve_R=2,Chiasm=3,Thyroid=4,Extra=5", "Thyroid_copy=Thyroid")
    cases = find_cases(str(tmp_path / "{case}" / "image.nrrd"), str(tmp_path / "{case}" / "masks"))
    cases.append(CaseSource("b", tmp_path / "b" / "image.nrrd", tmp_path / "b" / "masks"))
    with pytest.raises(DatasetError, match=r"7 problems in 2 cases, nothing imported") as caught:
        import_structures(cases, table, tmp_path / "out", StructureImportSettings())

    message = str(caught.value)
    assert "OpticNerve_L.nrrd: not on the grid of image image.nrrd (voxel size or axis directions differ" in message
    assert "OpticNerve_R.nrrd: not on the grid of image image.nrrd (origin is [0.5, 0.0, 0.0] voxels off" in message
    assert "Chiasm.nrrd: 4 foreground voxels lie outside the image" in message
    assert "Thyroid.nrrd: mask is empty" in message
    assert "a second mask for Thyroid" in message
    assert "Extra.nrrd: unreadable as NRRD or NIfTI" in message
    assert "b/image.nrrd: file not found" in message
    assert not (tmp_path / "out" / "dataset.json").exists()


def test_empty_and_missing_masks(tmp_path):
    image = write_nrrd(tmp_path / "image.nrrd", np.zeros((12, 10, 6), np.int16))
    write_nrrd(tmp_path / "masks" / "Thyroid.nrrd", np.zeros((12, 10, 6), np.uint8))
    settings = StructureImportSettings(require_all=True)
    with pytest.raises(DatasetError, match=r"(?s)Thyroid.nrrd: mask is empty.*no mask file for \['Chiasm'\]"):
        import_structures(find_cases(str(image), str(tmp_path / "masks")), load_label_table("Chiasm=3,Thyroid=4"), tmp_path / "out", settings)


def overlapping_case(tmp_path: Path) -> list:
    image = write_nrrd(tmp_path / "image.nrrd", np.zeros((12, 10, 6), np.int16))
    write_nrrd(tmp_path / "masks" / "Chiasm.nrrd", box_mask(box=(slice(0, 8), slice(0, 8), slice(0, 4))))      # 256 voxels
    write_nrrd(tmp_path / "masks" / "OpticNerve_L.nrrd", box_mask(box=(slice(6, 10), slice(6, 9), slice(2, 4))))  # 24 voxels
    return find_cases(str(image), str(tmp_path / "masks"))


@pytest.mark.parametrize(
    ("rule", "overlap_value"),
    [
        ("smallest", 1),  # the optic nerve, fewer voxels, keeps the shared voxels
        ("table", 1),     # the lower label value (OpticNerve_L = 1) keeps them
    ],
)
def test_overlap_rules(tmp_path, rule, overlap_value):
    table = load_label_table("OpticNerve_L=1,Chiasm=3")
    import_structures(overlapping_case(tmp_path), table, tmp_path / "out", StructureImportSettings(overlap=rule))
    label = np.asarray(nib.load(tmp_path / "out" / "labelsTr" / "image.nii.gz").dataobj)
    assert np.all(label[6:8, 6:8, 2:4] == overlap_value)
    assert int((label == 1).sum()) == 24


def test_overlap_smallest_beats_table_order(tmp_path):
    table = load_label_table("Chiasm=1,OpticNerve_L=2")
    import_structures(overlapping_case(tmp_path), table, tmp_path / "out", StructureImportSettings(overlap="smallest"))
    label = np.asarray(nib.load(tmp_path / "out" / "labelsTr" / "image.nii.gz").dataobj)
    assert np.all(label[6:8, 6:8, 2:4] == 2)


def test_overlap_error_rule(tmp_path):
    table = load_label_table("OpticNerve_L=1,Chiasm=3")
    with pytest.raises(DatasetError, match=r"OpticNerve_L and Chiasm overlap in 8 voxels; --overlap error is set"):
        import_structures(overlapping_case(tmp_path), table, tmp_path / "out", StructureImportSettings(overlap="error"))


def test_crop_margin_keeps_structures(tmp_path):
    image = write_nrrd(tmp_path / "image.nrrd", np.arange(40 * 30 * 10, dtype=np.int16).reshape(40, 30, 10))
    write_nrrd(tmp_path / "masks" / "Chiasm.nrrd", box_mask((40, 30, 10), (slice(20, 22), slice(10, 12), slice(5, 6))))
    settings = StructureImportSettings(crop_margin=2.0)
    import_structures(find_cases(str(image), str(tmp_path / "masks")), load_label_table("Chiasm=3"), tmp_path / "out", settings)

    cropped = nib.load(tmp_path / "out" / "imagesTr" / "image.nii.gz")
    assert cropped.shape == (10, 10, 3)  # 2 mm is 4 voxels of 0.5 mm in-plane and 1 slice of 2 mm
    original = nib.load(tmp_path / "out" / "labelsTr" / "image.nii.gz")
    corner_world = cropped.affine @ [0, 0, 0, 1]
    assert np.allclose(corner_world[:3], [-(16 * 0.5), -(6 * 0.5), 4 * 2.0])
    assert int((np.asarray(original.dataobj) == 3).sum()) == 4


@pytest.mark.parametrize(
    ("labels", "files", "message"),
    [
        ("OpticNerve_L=0", None, r"must be a whole number from 1 to 255 \(0 is background\) but got '0'"),
        ("OpticNerve_L=1,OpticNerve_R=1", None, r"share values"),
        ("OpticNerve_L", None, r"'OpticNerve_L' is not a NAME=VALUE pair"),
        ("OpticNerve_L=left", None, r"but got 'left'"),
        ("OpticNerve_L=1", "Optic-Nerve-Lt=Nerve", r"files map to structures \['Nerve'\] that have no label value"),
        ("missing_table.yaml", None, r"label table missing_table.yaml not found"),
    ],
)
def test_label_table_invalid(labels, files, message):
    with pytest.raises(DatasetError, match=message):
        load_label_table(labels, files)


@pytest.mark.parametrize(
    "text",
    [
        "OpticNerve_L: 1, OpticNerve_R: 2, Chiasm: 3, Thyroid: 4",  # as written in YAML style
        "OpticNerve_L=1,OpticNerve_R=2,Chiasm=3,Thyroid=4",
    ],
)
def test_label_table_inline(text):
    table = load_label_table(text)
    assert table.values == {"OpticNerve_L": 1, "OpticNerve_R": 2, "Chiasm": 3, "Thyroid": 4}


def test_label_table_yaml_file_names():
    table = load_label_table(str(LABEL_TABLE))
    assert table.values == {"OpticNerve_L": 1, "OpticNerve_R": 2, "Chiasm": 3, "Thyroid": 4}
    assert table.structure_for("Optic-Nerve-Lt", "c1") == "OpticNerve_L"
    assert table.structure_for("opticnerve_r", "c1") == "OpticNerve_R"
    assert table.structure_for("case_07_OAR_OpticChiasm", "case_07") == "Chiasm"
    assert table.structure_for("case_07_OAR_OpticChiasm", "case_08") is None
    assert table.structure_for("Brainstem", "c1") is None


def test_find_cases_pattern_twice(tmp_path):
    # HaN-Seg names files after their case folder: case_01/case_01_IMG_CT.nrrd
    for case in ("case_01", "case_02"):
        write_nrrd(tmp_path / case / f"{case}_IMG_CT.nrrd", np.zeros((2, 2, 2), np.int16))
    write_nrrd(tmp_path / "case_03" / "case_04_IMG_CT.nrrd", np.zeros((2, 2, 2), np.int16))

    cases = find_cases(str(tmp_path / "{case}" / "{case}_IMG_CT.nrrd"), str(tmp_path / "{case}"))
    assert [case.case_id for case in cases] == ["case_01", "case_02"]
    assert cases[1].masks_dir == tmp_path / "case_02"


def test_cli_import_structures_real_masks(real_case, tmp_path, capsys):
    image, masks = real_case
    pattern = str(image).replace(REAL_CASE, "{case}")
    code = main([
        "data", "import-structures", "--image", pattern, "--masks", str(HN_MASKS / "{case}" / "segmentations"),
        "--labels", "OpticNerve_L: 1, OpticNerve_R: 2, Chiasm: 3, Thyroid: 4",
        "--files", "Optic-Nerve-Lt=OpticNerve_L,Optic-Nerve-Rt=OpticNerve_R",
        "--group-pattern", r"^(0522c\d{4})", "--crop-margin", "10", "--out", str(tmp_path / "out"),
    ])
    assert code == 0
    assert "Imported 1 cases with labels OpticNerve_L: 1, OpticNerve_R: 2" in capsys.readouterr().out
    info = read_dataset(tmp_path / "out")
    assert info.cases[0].metadata["group"] == REAL_CASE
    manifest = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert manifest["labels"] == {"0": "background", "1": "OpticNerve_L", "2": "OpticNerve_R"}


def test_group_defaults_to_case_id(tmp_path):
    image = write_nrrd(tmp_path / "scan7" / "image.nrrd", np.zeros((12, 10, 6), np.int16))
    write_nrrd(tmp_path / "scan7" / "masks" / "Chiasm.nrrd", box_mask())
    cases = find_cases(str(tmp_path / "{case}" / "image.nrrd"), str(tmp_path / "{case}" / "masks"))
    import_structures(cases, load_label_table("Chiasm=3"), tmp_path / "out", StructureImportSettings())
    assert read_dataset(tmp_path / "out").cases[0].metadata["group"] == "scan7"


@pytest.mark.parametrize(
    ("labels", "declared"),
    [
        # an absent structure after the present ones is left out
        ("Chiasm=3,Thyroid=4", {0: "background", 1: "OpticNerve_L", 2: "OpticNerve_R", 3: "Chiasm"}),
        # an absent structure before a present one stays, so label values keep matching output channels
        ("Chiasm=4,Thyroid=3", {0: "background", 1: "OpticNerve_L", 2: "OpticNerve_R", 3: "Thyroid", 4: "Chiasm"}),
    ],
)
def test_absent_structures_declared(tmp_path, labels, declared):
    image = write_nrrd(tmp_path / "image.nrrd", np.zeros((12, 10, 6), np.int16))
    for index, name in enumerate(("OpticNerve_L", "OpticNerve_R", "Chiasm")):
        write_nrrd(tmp_path / "masks" / f"{name}.nrrd", box_mask(box=(slice(2 * index, 2 * index + 2), slice(0, 2), slice(0, 2))))
    table = load_label_table(f"OpticNerve_L=1,OpticNerve_R=2,{labels}")
    report = import_structures(find_cases(str(image), str(tmp_path / "masks")), table, tmp_path / "out", StructureImportSettings())
    assert report.labels == declared
