"""Training and validation splits: seeded, grouped and explicit."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpo.data.layouts import Case
from hpo.data.splits import select_subset, split_cases
from hpo.errors import DatasetError


def cases(n: int, groups: int | None = None) -> list[Case]:
    return [
        Case(f"c{i:02d}", (Path(f"/i{i}"),), Path(f"/l{i}"), {"patient": f"p{i % groups}"} if groups else {})
        for i in range(n)
    ]


def ids(items) -> list[str]:
    return [case.case_id for case in items]


def test_split_is_deterministic():
    first = split_cases(cases(20), 0.2, seed=3)
    second = split_cases(cases(20), 0.2, seed=3)
    assert ids(first[1]) == ids(second[1])
    assert len(first[1]) == 4
    assert not set(ids(first[0])) & set(ids(first[1]))


def test_split_changes_with_seed():
    assert ids(split_cases(cases(20), 0.2, seed=1)[1]) != ids(split_cases(cases(20), 0.2, seed=2)[1])


def test_grouped_split_keeps_groups_together():
    training, validation = split_cases(cases(30, groups=6), 0.34, seed=0, group_by="patient")
    train_groups = {case.metadata["patient"] for case in training}
    validation_groups = {case.metadata["patient"] for case in validation}
    assert not train_groups & validation_groups
    assert len(validation_groups) == 2


def test_group_key_missing():
    with pytest.raises(DatasetError, match=r"data\.group_by is 'video' but 10 cases have no such key"):
        split_cases(cases(10), 0.2, seed=0, group_by="video")


def test_explicit_folds():
    training, validation = split_cases(cases(5), 0.2, seed=0, folds={"training": ["c00", "c01"], "validation": ["c04"]})
    assert ids(training) == ["c00", "c01"]
    assert ids(validation) == ["c04"]


def test_folds_name_unknown_case():
    with pytest.raises(DatasetError, match=r"data\.folds names cases that are not in the dataset: \['zz'\]"):
        split_cases(cases(3), 0.2, seed=0, folds={"training": ["c00"], "validation": ["zz"]})


def test_single_case_cannot_split():
    with pytest.raises(DatasetError, match="Cannot split 1 cases"):
        split_cases(cases(1), 0.2, seed=0)


def test_subset_is_seeded_and_ordered():
    chosen = select_subset(cases(50), 8, seed=0)
    assert ids(chosen) == ids(select_subset(cases(50), 8, seed=0))
    assert ids(chosen) == sorted(ids(chosen))
    assert len(chosen) == 8
