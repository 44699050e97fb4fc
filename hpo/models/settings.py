"""The network settings that models are built from, shared by training and exported bundles."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class NetworkSettings:
    """Everything needed to rebuild a trained network: architecture, size and channel counts."""

    architecture: str
    spatial_dims: int
    in_channels: int
    out_channels: int
    channels: tuple[int, ...]
    num_res_units: int = 1
    dropout: float = 0.0
    deep_supervision: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> NetworkSettings:
        return cls(**{**values, "channels": tuple(values["channels"])})
