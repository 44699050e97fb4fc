"""Atomic writes: whole files or none, readable by others."""

from __future__ import annotations

import os
import stat

import pytest

from hpo.files import atomic_path


def test_atomic_path_replaces_whole_file(tmp_path):
    target = tmp_path / "sub" / "model.pt"
    with atomic_path(target) as temporary:
        temporary.write_text("new")
        assert not target.exists(), "the target appears only after the block"
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["model.pt"]


def test_atomic_path_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "model.pt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_atomic_path_follows_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "entry.npz", suffix=".npz") as temporary:
            assert temporary.name.endswith(".npz")
            temporary.write_bytes(b"x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "entry.npz").stat().st_mode) == 0o644
