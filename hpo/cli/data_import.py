"""`hpo data import-2d` and `hpo data import-structures`: bring pictures and per-structure masks into the Decathlon layout."""

from __future__ import annotations

import argparse


def register(commands) -> None:
    """Add the import subcommands, and the picture export of 2D label maps, to the `hpo data` parser."""
    _register_import_2d(commands)
    _register_export_2d(commands)
    _register_import_structures(commands)


def _register_import_2d(commands) -> None:
    parser = commands.add_parser(
        "import-2d",
        help="turn 2D image and mask pictures (PNG, JPEG, GIF, BMP, TIFF) into a Decathlon NIfTI dataset",
        description=(
            "Pair images and masks by their path relative to --images and --masks, convert colour to grey, "
            "threshold the masks and write single-slice NIfTI volumes with a dataset.json. The first subfolder "
            "(such as train/ or val/) is recorded as the 'split' key of each entry. Every problem is listed at once."
        ),
    )
    parser.add_argument("--images", required=True, help="folder of image pictures (subfolders are searched)")
    parser.add_argument("--masks", help="folder of mask pictures with the same relative names; leave out to import unlabelled frames into imagesTs/")
    parser.add_argument("--out", required=True, help="folder to write the dataset into")
    parser.add_argument("--threshold", type=float, default=128.0, help="mask pixels at or above this value are the structure (default: 128)")
    parser.add_argument("--structure", default="foreground", help="name of the masked structure in dataset.json (default: foreground)")
    parser.add_argument("--spacing", type=_spacing, default=(1.0, 1.0), metavar="MM[,MM]",
                        help="pixel width and height in millimetres, one value for square pixels (default: 1)")
    parser.add_argument("--downsample", type=int, default=1, metavar="N",
                        help="average N x N pixel blocks, so frames shrink N times per side (default: 1, no change)")
    parser.add_argument("--mask-suffix", default="", help="text that mask names carry after the image name, such as _mask")
    parser.add_argument("--group-pattern", metavar="REGEX",
                        help="regular expression on the relative path whose group 'group' (or first group) is recorded as the 'group' key, for data.group_by")
    parser.add_argument("--modality", default="image", help="modality name written to dataset.json (default: image)")
    parser.add_argument("--allow-empty", action="store_true", help="keep frames whose mask is empty instead of reporting them")
    parser.add_argument("--skip-problems", action="store_true", help="import the valid pairs and list the others as warnings")
    parser.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    parser.set_defaults(handler=import_2d_command)


def import_2d_command(arguments: argparse.Namespace) -> int:
    from hpo.data.importers.import_2d import PictureImportSettings, import_pictures

    settings = PictureImportSettings(
        threshold=arguments.threshold, structure=arguments.structure, spacing=arguments.spacing,
        downsample=arguments.downsample, mask_suffix=arguments.mask_suffix, group_pattern=arguments.group_pattern,
        modality=arguments.modality, allow_empty=arguments.allow_empty, skip_problems=arguments.skip_problems,
        overwrite=arguments.overwrite,
    )
    report = import_pictures(arguments.images, arguments.masks, arguments.out, settings)
    skipped = f"; skipped {len(report.skipped)} with problems" if report.skipped else ""
    if report.unlabelled:
        print(f"Imported {report.unlabelled} unlabelled frames into {report.dataset.parent / 'imagesTs'}{skipped}")
        print("Segment them with: hpo predict --model MODEL_DIR --input FRAME.nii.gz --output FRAME_seg.nii.gz")
        return 0

    splits = ", ".join(f"{name}: {count}" for name, count in sorted(report.splits.items()))
    print(f"Imported {report.imported} labelled frames" + (f" ({splits})" if splits else "") + skipped)
    print(f"Dataset ready: {report.dataset.parent}\nSet data.path in your study config to this folder.")
    return 0


def _register_export_2d(commands) -> None:
    parser = commands.add_parser(
        "export-2d", help="write single-slice label maps (such as 'hpo predict' output) as PNG mask pictures",
        description="Write each single-slice NIfTI label map as a PNG in the orientation of the imported picture. "
        "One structure becomes 0 and 255; several structures keep their label values.",
    )
    parser.add_argument("--labels", required=True, help="a NIfTI label map, or a folder of them")
    parser.add_argument("--out", required=True, help="folder to write NAME.png into")
    parser.set_defaults(handler=export_2d_command)


def export_2d_command(arguments: argparse.Namespace) -> int:
    from pathlib import Path

    from hpo.data.importers.pictures import PictureError, label_map_to_picture
    from hpo.data.importers.volumes import volume_stem
    from hpo.errors import DatasetError

    source = Path(arguments.labels)
    paths = sorted(source.glob("*.nii*")) if source.is_dir() else [source]
    if not paths or not all(path.is_file() for path in paths):
        raise DatasetError(f"{source}: no NIfTI label map found; give a .nii.gz file or a folder of them")
    for path in paths:
        try:
            written = label_map_to_picture(path, Path(arguments.out) / f"{volume_stem(path)}.png")
        except PictureError as error:
            raise DatasetError(str(error)) from error
        print(written)
    return 0


def _spacing(text: str) -> tuple[float, float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"spacing must be one or two numbers such as 0.1 or 0.1,0.12 but got {text!r}") from error
    if len(values) not in (1, 2):
        raise argparse.ArgumentTypeError(f"spacing takes one or two values but got {len(values)}")
    return (values[0], values[-1])


def _register_import_structures(commands) -> None:
    parser = commands.add_parser(
        "import-structures",
        help="merge one mask file per structure (NRRD or NIfTI) into multi-label NIfTI label maps",
        description=(
            "Build a Decathlon dataset from images with one mask file per structure, as in PDDCA and HaN-Seg. "
            "Put {case} in --image and --masks to import many cases, for example "
            "--image 'PDDCA/{case}/img.nrrd' --masks 'PDDCA/{case}/structures'. Every mask must lie on its image's grid. "
            "Overlaps go to the smaller structure by default (--overlap)."
        ),
    )
    parser.add_argument("--image", required=True, help="image file (NRRD or NIfTI), or a pattern with {case}")
    parser.add_argument("--masks", required=True, help="folder of the case's mask files, or a pattern with {case}")
    parser.add_argument("--labels", required=True,
                        help="label table: a YAML file, or inline pairs such as 'OpticNerve_L=1,OpticNerve_R=2,Chiasm=3,Thyroid=4'")
    parser.add_argument("--files", help="mask file names (without suffix) mapped to structures, such as 'Optic-Nerve-Lt=OpticNerve_L'")
    parser.add_argument("--out", required=True, help="folder to write the dataset into")
    parser.add_argument("--case-id", help="identifier of a single case (default: the image file name)")
    parser.add_argument("--overlap", choices=("smallest", "table", "error"), default="smallest",
                        help="who gets a voxel in several masks: the structure with fewer voxels (default), the lower label value, or report it")
    parser.add_argument("--crop-margin", type=float, metavar="MM",
                        help="crop each case to its labelled voxels plus this margin in millimetres (default: keep the whole image)")
    parser.add_argument("--require-all", action="store_true", help="report a case that lacks a mask for any structure of the table")
    parser.add_argument("--group-pattern", metavar="REGEX",
                        help="regular expression on the case identifier whose group 'group' (or first group) is recorded as the 'group' key, for data.group_by")
    parser.add_argument("--modality", default="CT", help="modality name written to dataset.json (default: CT)")
    parser.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    parser.set_defaults(handler=import_structures_command)


def import_structures_command(arguments: argparse.Namespace) -> int:
    from hpo.data.importers.label_table import load_label_table
    from hpo.data.importers.structures import StructureImportSettings, find_cases, import_structures

    table = load_label_table(arguments.labels, arguments.files)
    cases = find_cases(arguments.image, arguments.masks, arguments.case_id)
    settings = StructureImportSettings(
        overlap=arguments.overlap, crop_margin=arguments.crop_margin, require_all=arguments.require_all,
        group_pattern=arguments.group_pattern, modality=arguments.modality, overwrite=arguments.overwrite,
    )
    report = import_structures(cases, table, arguments.out, settings)
    labels = ", ".join(f"{name}: {value}" for value, name in report.labels.items() if value)
    print(f"Imported {len(report.cases)} cases with labels {labels}")
    for case_id, missing in report.missing.items():
        print(f"  case {case_id} has no mask for {', '.join(missing)}")
    print(f"Dataset ready: {report.dataset.parent}\nSet data.path in your study config to this folder.")
    return 0
