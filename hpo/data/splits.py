"""Deterministic training and validation splits: seeded, grouped, or given as an explicit fold."""

from __future__ import annotations

import random

from hpo.data.layouts import Case
from hpo.errors import DatasetError


def select_subset(cases: list[Case], max_cases: int | None, seed: int) -> list[Case]:
    """Return at most `max_cases` cases, the same ones for the same seed, in dataset order."""
    if max_cases is None or max_cases >= len(cases):
        return list(cases)
    chosen = set(random.Random(seed).sample(range(len(cases)), max_cases))
    return [case for index, case in enumerate(cases) if index in chosen]


def split_cases(
    cases: list[Case],
    validation_fraction: float,
    seed: int,
    folds: dict[str, list[str]] | None = None,
    group_by: str | None = None,
) -> tuple[list[Case], list[Case]]:
    """Split cases into training and validation.

    With `folds`, the listed case identifiers are used as given, or with `folds["by"]`, the cases
    whose metadata value under that key is listed (other cases are left out). Otherwise a seeded shuffle puts
    `validation_fraction` of the cases (at least one) into validation. With `group_by`, whole
    groups (cases sharing that metadata value, such as a patient or a video) move together.
    """
    if folds is not None:
        return _split_by_folds(cases, folds)

    groups = _group(cases, group_by)
    keys = sorted(groups)
    if len(keys) < 2:
        msg = f"Cannot split {len(cases)} cases in {len(keys)} group(s); training and validation each need one."
        raise DatasetError(msg)
    random.Random(seed).shuffle(keys)
    n_validation = min(max(1, round(validation_fraction * len(keys))), len(keys) - 1)
    validation_keys = set(keys[:n_validation])

    training = [case for key in sorted(groups) if key not in validation_keys for case in groups[key]]
    validation = [case for key in sorted(groups) if key in validation_keys for case in groups[key]]
    return training, validation


def _group(cases: list[Case], group_by: str | None) -> dict[str, list[Case]]:
    groups: dict[str, list[Case]] = {}
    missing = []
    for case in cases:
        if group_by is None:
            key = case.case_id
        elif group_by in case.metadata:
            key = str(case.metadata[group_by])
        else:
            missing.append(case.case_id)
            continue
        groups.setdefault(key, []).append(case)
    if missing:
        msg = f"data.group_by is '{group_by}' but {len(missing)} cases have no such key in dataset.json: {missing[:10]}"
        raise DatasetError(msg)
    return groups


def _split_by_folds(cases: list[Case], folds: dict) -> tuple[list[Case], list[Case]]:
    if folds.get("by"):
        return _split_by_recorded_values(cases, folds["by"], folds["training"], folds["validation"])

    by_id = {case.case_id: case for case in cases}
    unknown = sorted((set(folds["training"]) | set(folds["validation"])) - set(by_id))
    if unknown:
        msg = f"data.folds names cases that are not in the dataset: {unknown[:10]}"
        raise DatasetError(msg)
    return [by_id[c] for c in folds["training"]], [by_id[c] for c in folds["validation"]]


def _split_by_recorded_values(
    cases: list[Case], key: str, training_values: list[str], validation_values: list[str]
) -> tuple[list[Case], list[Case]]:
    """Split by a value recorded in each dataset.json entry; cases with other values are left out."""
    missing = [case.case_id for case in cases if key not in case.metadata]
    if missing:
        msg = (
            f"data.folds.by is '{key}' but {len(missing)} cases have no such key in dataset.json: {missing[:10]}; "
            "add the key to every training entry or remove data.folds.by."
        )
        raise DatasetError(msg)
    training = [case for case in cases if str(case.metadata[key]) in training_values]
    validation = [case for case in cases if str(case.metadata[key]) in validation_values]
    if not training or not validation:
        found = sorted({str(case.metadata[key]) for case in cases})
        msg = (
            f"data.folds by '{key}' gives {len(training)} training and {len(validation)} validation cases; "
            f"the dataset has the values {found}, and data.folds lists {training_values} and {validation_values}."
        )
        raise DatasetError(msg)
    return training, validation
