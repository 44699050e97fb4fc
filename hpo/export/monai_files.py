"""The MONAI Bundle files of an exported model: `metadata.json`, `inference.json` and a README.

`inference.json` rebuilds the network with MONAI's own classes and preprocesses with MONAI
transforms that match `hpo.data.preprocessing` (reorient, clip each channel to its percentiles,
then zero mean and unit variance), so `monai.bundle` can load and run the model without hpo.
Its `run` step is a plain loop over the input files, so it needs no pytorch-ignite.
"""

from __future__ import annotations

import platform

import numpy as np
import torch

from hpo import __version__

# The schema that MONAI's model-zoo bundles name; `monai.bundle verify_metadata` downloads it.
METADATA_SCHEMA = "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20220324.json"
BUNDLE_VERSION = "1.0.0"


def metadata(description) -> dict:
    """Return the MONAI Bundle `metadata.json`: versions, task, and the network's input and output format."""
    import monai
    import nibabel

    trial = description.source.get("trial", {})
    study = description.source.get("study", {})
    structures = ", ".join(description.structure_names.values())
    return {
        "schema": METADATA_SCHEMA,
        "version": BUNDLE_VERSION,
        "changelog": {BUNDLE_VERSION: f"exported by hpo {__version__} from study '{study.get('name')}', trial {trial.get('number')}"},
        "monai_version": monai.__version__,
        "pytorch_version": torch.__version__.split("+")[0],
        "numpy_version": np.__version__,
        "required_packages_version": {"nibabel": nibabel.__version__},
        "name": f"{study.get('name', 'hpo')} trial {trial.get('number')}",
        "task": f"Segmentation of {structures}",
        "description": (
            f"A {description.network.architecture} found by an hpo hyperparameter study; mean validation "
            f"Dice {_format(trial.get('value'))} on the study's validation cases."
        ),
        "authors": "hpo",
        "copyright": "The weights inherit the licence of the training data set.",
        "data_source": study.get("dataset", "unknown"),
        "data_type": "nibabel",
        "intended_use": "Research only, not for clinical use.",
        "network_data_format": {"inputs": {"image": _input_format(description)}, "outputs": {"pred": _output_format(description)}},
    }


def _format(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "unknown"


def _input_format(description) -> dict:
    return {
        "type": "image",
        "format": "magnitude",
        "modality": ", ".join(description.channels),
        "num_channels": description.network.in_channels,
        "spatial_shape": list(description.patch_size),
        "dtype": "float32",
        "value_range": [],
        "is_patch_data": True,
        "channel_def": {str(index): name for index, name in enumerate(description.channels)},
    }


def _output_format(description) -> dict:
    return {
        "type": "image",
        "format": "segmentation",
        "num_channels": description.network.out_channels,
        "spatial_shape": list(description.patch_size),
        "dtype": "float32",
        "value_range": [],
        "is_patch_data": True,
        "channel_def": {str(value): name for value, name in sorted(description.labels.items())},
    }


def network_definition(settings) -> dict:
    """Return the MONAI Bundle `network_def` that builds the same network as `hpo.models.build_network`."""
    levels = len(settings.channels)
    strides = [2] * (levels - 1)
    common = {"spatial_dims": settings.spatial_dims, "in_channels": settings.in_channels, "out_channels": settings.out_channels}
    if settings.architecture == "unet":
        return {
            "_target_": "monai.networks.nets.UNet", **common, "channels": list(settings.channels), "strides": strides,
            "num_res_units": settings.num_res_units, "dropout": settings.dropout,
        }
    if settings.architecture == "attention_unet":
        return {
            "_target_": "monai.networks.nets.AttentionUnet", **common, "channels": list(settings.channels),
            "strides": strides, "dropout": settings.dropout,
        }
    return {
        "_target_": "monai.networks.nets.DynUNet", **common, "kernel_size": [3] * levels, "strides": [1, *strides],
        "upsample_kernel_size": strides, "filters": list(settings.channels), "dropout": settings.dropout,
        "res_block": settings.num_res_units > 0, "deep_supervision": settings.deep_supervision,
        "deep_supr_num": max(1, levels - 2),
    }


def inference_config(description) -> dict:
    """Return the MONAI Bundle `inference.json`, which segments every NIfTI file in `dataset_dir` into `output_dir`."""
    # NOTE: written for 3D models. A 2D model's config loads single-slice volumes with their slice
    # axis, which the 2D network rejects, so 2D models run with `hpo predict` only.
    low, high = description.preprocessing.clip_percentiles
    return {
        "imports": ["$import glob", "$import os", "$import numpy", "$import torch"],
        "bundle_root": ".",
        "model_path": "$os.path.join(@bundle_root, 'models', 'model.pt')",
        "dataset_dir": "$os.path.join(@bundle_root, 'input')",
        "output_dir": "$os.path.join(@bundle_root, 'eval')",
        "device": "$torch.device('cuda' if torch.cuda.is_available() else 'cpu')",
        "network_def": network_definition(description.network),
        "network": "$@network_def.to(@device)",
        "datalist": "$[{'image': path} for path in sorted(glob.glob(os.path.join(@dataset_dir, '*.nii*')))]",
        "preprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "LoadImaged", "keys": "image", "reader": "NibabelReader", "image_only": True},
                {"_target_": "EnsureChannelFirstd", "keys": "image"},
                {
                    "_target_": "Orientationd", "keys": "image", "axcodes": description.preprocessing.orientation,
                    "labels": [["L", "R"], ["P", "A"], ["I", "S"]],
                },
                {"_target_": "ClipIntensityPercentilesd", "keys": "image", "lower": low, "upper": high, "channel_wise": True},
                {"_target_": "NormalizeIntensityd", "keys": "image", "channel_wise": True},
            ],
        },
        "dataset": {"_target_": "Dataset", "data": "@datalist", "transform": "@preprocessing"},
        "inferer": {
            "_target_": "SlidingWindowInferer", "roi_size": list(description.patch_size), "sw_batch_size": 4,
            "overlap": description.sw_overlap, "mode": "gaussian",
        },
        "postprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "AsDiscreted", "keys": "pred", "argmax": True},
                {"_target_": "Invertd", "keys": "pred", "transform": "@preprocessing", "orig_keys": "image", "nearest_interp": True},
                {
                    "_target_": "SaveImaged", "keys": "pred", "output_dir": "@output_dir", "output_postfix": "seg",
                    "output_dtype": "$numpy.uint8", "resample": False, "separate_folder": False,
                },
            ],
        },
        "predict": "$lambda item: @postprocessing({**item, 'pred': @inferer(item['image'][None].to(@device), @network)[0].cpu()})",
        "initialize": [
            "$@network.load_state_dict(torch.load(@model_path, map_location=@device, weights_only=True))",
            "$@network.eval()",
        ],
        # no_grad as a decorator, so that running the config leaves the process's grad mode alone.
        "run": ["$torch.no_grad()(lambda: [@predict(item) for item in @dataset])()"],
        "finalize": [],
    }


def bundle_readme(description) -> str:
    """Write the model folder's short README: what it segments, where it came from, how to run it."""
    trial = description.source.get("trial", {})
    study = description.source.get("study", {})
    dice = trial.get("dice_per_structure") or {}
    scores = "\n".join(f"| {name} | {value:.4f} |" for name, value in dice.items())
    return (
        f"# {study.get('name', 'hpo')} trial {trial.get('number')}\n\n"
        f"A {description.network.architecture} (channels {list(description.network.channels)}) that segments "
        f"{', '.join(description.structure_names.values())}, exported by hpo {__version__} "
        f"on Python {platform.python_version()}.\n\n"
        f"| structure | validation Dice |\n|---|---|\n{scores}\n\n"
        "Apply it with hpo:\n\n"
        "    hpo predict --model THIS_FOLDER --input image.nii.gz --output image_seg.nii.gz\n\n"
        "or with MONAI's bundle runner (needs `fire`):\n\n"
        "    python -m monai.bundle run --config_file configs/inference.json --bundle_root . "
        "--dataset_dir INPUT_FOLDER --output_dir OUTPUT_FOLDER\n\n"
        "`configs/hpo.json` holds the network and preprocessing settings, the label names, and the "
        "trial's parameters and metrics. The weights in `models/model.pt` are a state dict of tensors "
        "(`torch.load(path, weights_only=True)`).\n"
    )
