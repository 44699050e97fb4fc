"""The preprocessing cache: each case preprocessed once, shared by later trials, runs and workers.

A case's entry is one `.npz` file whose name carries a fingerprint of its source files (path,
size, modification time) and of the preprocessing settings, so a changed file or setting gives a
new entry instead of a stale one. Entries are written to a temporary name and renamed into place
under a file lock: a worker either finds a whole entry or waits while another worker builds it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock

from hpo.data.layouts import Case, DatasetInfo
from hpo.data.preprocessing import PreprocessingSettings, load_image, load_label
from hpo.data.validation import check_headers, label_value_problems
from hpo.errors import DatasetError
from hpo.files import atomic_path

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1


@dataclass(frozen=True)
class PreparedCase:
    """One preprocessed case in memory: image [C, *spatial] float32, label [*spatial] uint8."""

    case_id: str
    image: np.ndarray
    label: np.ndarray
    foreground: np.ndarray  # [N, spatial_dims] int32 coordinates of labelled voxels


def case_fingerprint(case: Case, settings: PreprocessingSettings) -> str:
    """Hash of the case's source files and the settings; it changes whenever the cached entry would."""
    parts: list = [CACHE_FORMAT, settings.to_dict()]
    for path in (*case.images, case.label):
        stat = path.stat()
        parts.append([str(path), stat.st_size, stat.st_mtime_ns])
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    return digest[:16]


def prepare_cases(
    info: DatasetInfo, cases: list[Case], settings: PreprocessingSettings, cache_dir: str | Path
) -> list[PreparedCase]:
    """Return every case preprocessed, reading cached entries and building the missing ones.

    All cases are checked before any error is raised, so the message lists every broken file.
    """
    check_headers(info, cases)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    prepared: list[PreparedCase] = []
    problems: list[str] = []
    built = 0
    for case in cases:
        entry = cache_dir / f"{case.case_id}-{case_fingerprint(case, settings)}.npz"
        if not entry.is_file():
            with FileLock(str(entry) + ".lock"):
                if not entry.is_file():
                    problems.extend(_build_entry(case, settings, info.labels, entry))
                    built += 1
        if entry.is_file():
            prepared.append(_read_entry(case.case_id, entry))
    if problems:
        raise DatasetError(f"Dataset {info.root} has {len(problems)} problems; fix or remove these cases:", problems)

    if built:
        logger.info("Preprocessed %d cases into %s in %.1f s", built, cache_dir, time.monotonic() - started)
    else:
        logger.debug("Read %d preprocessed cases from %s", len(prepared), cache_dir)
    return prepared


def _build_entry(case: Case, settings: PreprocessingSettings, labels: dict[int, str], entry: Path) -> list[str]:
    try:
        image, _ = load_image(case.images, settings)
        raw_label = load_label(case.label, settings)
    except DatasetError as error:
        return [str(error)]
    except Exception as error:  # a corrupt gzip stream or truncated file shows only when the data is read
        return [f"{case.images[0]}: data unreadable ({type(error).__name__}: {error})"]
    problems = label_value_problems(case.label, raw_label, labels)
    if problems:
        return problems

    label = np.rint(raw_label).astype(np.uint8)
    foreground = np.argwhere(label > 0).astype(np.int32)
    _write_atomically(entry, image=image, label=label, foreground=foreground)
    return []


def _write_atomically(entry: Path, **arrays: np.ndarray) -> None:
    with atomic_path(entry, suffix=".npz") as temporary:
        np.savez(temporary, **arrays)


def _read_entry(case_id: str, entry: Path) -> PreparedCase:
    with np.load(entry) as arrays:
        return PreparedCase(case_id, arrays["image"], arrays["label"], arrays["foreground"])
