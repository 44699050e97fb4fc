"""Fetching the public Medical Segmentation Decathlon tasks with MONAI's checksum-verified downloader."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from hpo.errors import DatasetError

logger = logging.getLogger(__name__)


def decathlon_source(task: str) -> tuple[str, str]:
    """Return the download URL and MD5 checksum that MONAI records for a Decathlon task such as Task04_Hippocampus."""
    from monai.apps.datasets import DecathlonDataset

    if task not in DecathlonDataset.resource:
        msg = f"Unknown Decathlon task '{task}'; choose one of {sorted(DecathlonDataset.resource)}."
        raise DatasetError(msg)
    return DecathlonDataset.resource[task], DecathlonDataset.md5[task]


def download_decathlon(task: str, destination: str | Path, url: str | None = None, md5: str | None = None) -> Path:
    """Download and extract a Decathlon task into `destination/<task>`, verifying the archive's MD5.

    `url` and `md5` replace MONAI's recorded source, for an HTTP or HTTPS mirror.
    Returns the extracted dataset folder. An existing folder with a dataset.json is kept as it is.
    """
    from monai.apps import download_and_extract

    destination = Path(destination)
    dataset_dir = destination / task
    if (dataset_dir / "dataset.json").is_file():
        logger.info("Dataset %s already present in %s; nothing downloaded", task, dataset_dir)
        return dataset_dir

    custom_source = url is not None
    default_url, default_md5 = decathlon_source(task) if url is None or md5 is None else (url, md5)
    url = url or default_url
    md5 = md5 or default_md5
    destination.mkdir(parents=True, exist_ok=True)
    archive = destination / f"{task}.tar"
    logger.info("Downloading %s from %s into %s (MD5 %s)", task, url, destination, md5)
    try:
        download_and_extract(url, filepath=str(archive), output_dir=str(destination), hash_val=md5, hash_type="md5")
    except Exception as error:  # MONAI raises RuntimeError on a bad checksum, URLError when unreachable
        shutil.rmtree(dataset_dir, ignore_errors=True)
        reason = str(error).strip().rstrip(".")
        hint = "Check the URL and the MD5" if custom_source else "Check the network, or pass --url and --md5 for a mirror"
        msg = f"Download of {task} from {url} failed: {reason}. {hint}."
        raise DatasetError(msg) from error
    finally:
        archive.unlink(missing_ok=True)

    if not (dataset_dir / "dataset.json").is_file():
        msg = f"The archive from {url} did not contain {task}/dataset.json; is it a Decathlon task archive?"
        raise DatasetError(msg)
    logger.info("Dataset %s ready in %s", task, dataset_dir)
    return dataset_dir
