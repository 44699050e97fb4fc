"""The frozen configuration of one training run: all a trial's settings, with no Optuna in sight."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from hpo.models.settings import NetworkSettings


@dataclass(frozen=True)
class TrainingConfig:
    """One trial's training settings, sampled and fixed alike."""

    network: NetworkSettings
    patch_size: tuple[int, ...]
    learning_rate: float
    epochs: int
    batch_size: int
    weight_decay: float = 1e-5
    foreground_ratio: float = 0.67
    loss: str = "dice_ce"
    iterations_per_epoch: int = 50
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    num_workers: int = 0
    sw_overlap: float = 0.25
    output_dir: Path | None = None

    def __post_init__(self) -> None:
        if len(self.patch_size) != self.network.spatial_dims:
            msg = f"patch_size {self.patch_size} needs {self.network.spatial_dims} values"
            raise ValueError(msg)
        if self.epochs < 1 or self.batch_size < 1 or self.iterations_per_epoch < 1:
            msg = f"epochs, batch_size and iterations_per_epoch must be positive but got {self.epochs}, {self.batch_size}, {self.iterations_per_epoch}"
            raise ValueError(msg)
        if self.learning_rate <= 0:
            msg = f"learning_rate must be positive but got {self.learning_rate}"
            raise ValueError(msg)

    def to_dict(self) -> dict:
        values = asdict(self)
        values["output_dir"] = str(self.output_dir) if self.output_dir else None
        return values
