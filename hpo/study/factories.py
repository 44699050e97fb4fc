"""Samplers and pruners built from the config's `sampler` and `pruner` sections."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import optuna

from hpo.config.schema import PrunerSection, SamplerSection

ConstraintsFunction = Callable[[optuna.trial.FrozenTrial], Sequence[float]]


def build_sampler(section: SamplerSection, constraints: ConstraintsFunction | None = None) -> optuna.samplers.BaseSampler:
    """TPE (default), random search or CMA-ES, seeded from the config.

    TPE takes `constraints`, so trials marked infeasible (out of memory) steer it away from their parameters.
    """
    if section.name == "tpe":
        return optuna.samplers.TPESampler(
            seed=section.seed, n_startup_trials=section.n_startup_trials, constraints_func=constraints
        )
    if section.name == "random":
        return optuna.samplers.RandomSampler(seed=section.seed)
    if section.name == "cmaes":
        return optuna.samplers.CmaEsSampler(
            seed=section.seed, n_startup_trials=section.n_startup_trials, warn_independent_sampling=False
        )
    msg = f"sampler.name must be one of tpe, random, cmaes but got '{section.name}'"
    raise ValueError(msg)


def build_pruner(section: PrunerSection, max_epochs: int) -> optuna.pruners.BasePruner:
    """Median, percentile, successive halving, Hyperband or no pruning; steps are epochs."""
    if section.name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=section.n_startup_trials, n_warmup_steps=section.n_warmup_steps,
            interval_steps=section.interval_steps,
        )
    if section.name == "percentile":
        return optuna.pruners.PercentilePruner(
            section.percentile, n_startup_trials=section.n_startup_trials, n_warmup_steps=section.n_warmup_steps,
            interval_steps=section.interval_steps,
        )
    if section.name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=section.min_resource, reduction_factor=section.reduction_factor
        )
    if section.name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=section.min_resource, max_resource=max_epochs, reduction_factor=section.reduction_factor
        )
    if section.name == "none":
        return optuna.pruners.NopPruner()
    msg = f"pruner.name must be one of median, percentile, successive_halving, hyperband, none but got '{section.name}'"
    raise ValueError(msg)
