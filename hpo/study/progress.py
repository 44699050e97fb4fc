"""Progress lines for long studies: one per epoch with scores and estimated time left."""

from __future__ import annotations

import logging
import time

from hpo.training.trainer import EpochRecord

logger = logging.getLogger("hpo.progress")


def format_duration(seconds: float) -> str:
    """`42 s`, `3 min 05 s` or `1 h 12 min`."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class StudyClock:
    """Tracks trial durations in this run to estimate how long the rest of the budget takes."""

    def __init__(self, n_trials: int | None, timeout: float | None) -> None:
        self.started = time.monotonic()
        self.n_trials = n_trials
        self.timeout = timeout
        self.trial_seconds: list[float] = []

    def finish_trial(self, seconds: float) -> None:
        self.trial_seconds.append(seconds)

    def seconds_left(self, trials_left: int | None, current_trial_left: float) -> float | None:
        """Estimated seconds until the budget is spent, or None before anything is known."""
        estimates = []
        if self.timeout is not None:
            estimates.append(self.timeout - (time.monotonic() - self.started))
        if trials_left is not None:
            mean = sum(self.trial_seconds) / len(self.trial_seconds) if self.trial_seconds else None
            if mean is not None or trials_left == 0:
                estimates.append(current_trial_left + (mean or 0.0) * trials_left)
        return min(estimates) if estimates else None


def log_epoch(trial_number: int, record: EpochRecord, structure_names: list[str], trial_left: float,
              study_left: float | None) -> None:
    """Log one epoch: loss, per-structure and mean Dice, and the time left in the trial and the study."""
    per_structure = ", ".join(f"{name} {value:.3f}" for name, value in zip(structure_names, record.dice))
    left = f"trial ~{format_duration(trial_left)} left"
    if study_left is not None:
        left += f", study ~{format_duration(study_left)} left"
    logger.info(
        "trial %d epoch %d/%d  loss %.4f  Dice %.3f (%s)%s  %.1f s/epoch, %s",
        trial_number, record.epoch, record.epochs, record.train_loss, record.mean_dice, per_structure,
        " *" if record.improved else "", record.seconds, left,
    )
