"""Checkpoints written atomically: a file is either the whole previous version or the whole new one."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from hpo.files import atomic_path


def save_weights(model: nn.Module, path: str | Path) -> Path:
    """Write the model's state dict (tensors only) to `path` through a temporary file and a rename."""
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    with atomic_path(path) as temporary:
        torch.save(state, temporary)
    return Path(path)


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a state dict saved by `save_weights` without unpickling arbitrary objects."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model
