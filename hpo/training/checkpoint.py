"""Checkpoints written atomically: a file is either the whole previous version or the whole new one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from torch import nn


def save_weights(model: nn.Module, path: str | Path) -> Path:
    """Write the model's state dict (tensors only) to `path` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".partial")
    os.close(handle)
    try:
        state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
        torch.save(state, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a state dict saved by `save_weights` without unpickling arbitrary objects."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model
