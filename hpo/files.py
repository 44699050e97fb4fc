"""Atomic file writes: readers see either the whole previous file or the whole new one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".partial") -> Iterator[Path]:
    """Yield a temporary path in the folder of `path`, then rename it over `path`.

    The temporary name ends with `suffix`, for writers that choose a format by extension (such as
    `.npz` or `.nii.gz`). If the block raises, the temporary file is deleted and `path` is left as
    it was. The final file gets the permissions of a newly created file under the process umask,
    not the owner-only mode of a temporary file, so other users and containers can read it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_current_umask())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
