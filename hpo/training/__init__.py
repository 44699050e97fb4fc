"""Training of one trial: the epoch loop, validation with sliding windows, metrics and checkpoints."""

from hpo.training.config import TrainingConfig
from hpo.training.trainer import EpochRecord, NonFiniteLossError, Reporter, TrainingResult, train

__all__ = ["EpochRecord", "NonFiniteLossError", "Reporter", "TrainingConfig", "TrainingResult", "train"]
