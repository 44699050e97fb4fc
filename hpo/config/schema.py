"""The study YAML schema: every section, key, type and range that a study config may contain.

Every model forbids unknown keys so that a typo fails loudly before any work starts. Paths stay
as written here; `hpo.config.loader` resolves them against the config file's folder.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SamplerName = Literal["tpe", "random", "cmaes"]
PrunerName = Literal["median", "percentile", "successive_halving", "hyperband", "none"]
Architecture = Literal["unet", "attention_unet", "dynunet"]
LossName = Literal["dice_ce", "dice_focal", "generalized_dice_focal"]
Layout = Literal["auto", "decathlon", "nnunetv2"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StudySection(_Section):
    """The study's name, its storage and the folder for its outputs."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    storage: str | None = None
    output_dir: str = "runs"
    artifact_store: str | None = None
    heartbeat_interval: int = Field(default=30, ge=1)
    grace_period: int = Field(default=120, ge=2)

    @model_validator(mode="after")
    def _grace_exceeds_heartbeat(self) -> StudySection:
        if self.grace_period <= self.heartbeat_interval:
            msg = (
                f"study.grace_period ({self.grace_period} s) must be longer than study.heartbeat_interval "
                f"({self.heartbeat_interval} s), or live trials would be declared stale."
            )
            raise ValueError(msg)

        return self


class FoldSection(_Section):
    """An explicit split: case identifiers for training and for validation, or, with `by`, values of
    that key of the dataset.json training entries (such as `split: train` written by `hpo data import-2d`)."""

    by: str | None = None
    training: list[str] = Field(min_length=1)
    validation: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _disjoint(self) -> FoldSection:
        shared = sorted(set(self.training) & set(self.validation))
        if shared:
            kind = f"values of '{self.by}'" if self.by else "cases"
            msg = f"data.folds: {kind} {shared} are in both training and validation; list each once."
            raise ValueError(msg)

        return self


class DataSection(_Section):
    """The dataset, its split into training and validation, and preprocessing."""

    path: str
    layout: Layout = "auto"
    validation_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    split_seed: int = 0
    folds: FoldSection | None = None
    group_by: str | None = None
    max_cases: int | None = Field(default=None, ge=2)
    orientation: str = Field(default="RAS", pattern=r"^[LRAPSI]{3}$")
    clip_percentiles: tuple[float, float] = (0.5, 99.5)
    cache_dir: str | None = None

    @model_validator(mode="after")
    def _percentiles_ordered(self) -> DataSection:
        low, high = self.clip_percentiles
        if not 0.0 <= low < high <= 100.0:
            msg = f"data.clip_percentiles must satisfy 0 <= low < high <= 100 but got [{low}, {high}]."
            raise ValueError(msg)

        return self


class ModelSection(_Section):
    """The network: 2D or 3D, its width and depth, and the training patch."""

    spatial_dims: Literal[2, 3] = 3
    patch_size: list[int] = Field(min_length=2, max_length=3)
    channels: list[int] = Field(default=[16, 32, 64, 128], min_length=2)
    num_res_units: int = Field(default=1, ge=0)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _patch_matches_dims(self) -> ModelSection:
        if len(self.patch_size) != self.spatial_dims:
            msg = (
                f"model.patch_size has {len(self.patch_size)} values but model.spatial_dims is "
                f"{self.spatial_dims}; give one size per spatial axis."
            )
            raise ValueError(msg)
        multiple = 2 ** (len(self.channels) - 1)
        if any(size % multiple for size in self.patch_size):
            msg = (
                f"model.patch_size values must be multiples of {multiple} (2 to the power of "
                f"len(model.channels) - 1) but got {self.patch_size}."
            )
            raise ValueError(msg)

        return self


class ParamSpec(_Section):
    """One searched hyperparameter: a range (`low`, `high`, optional `log` or `step`), a list of
    `choices`, or a fixed `value`."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[float | int | str | bool] | None = None
    value: float | int | str | bool | None = None

    @model_validator(mode="after")
    def _one_form(self) -> ParamSpec:
        forms = [self.low is not None or self.high is not None, self.choices is not None, self.value is not None]
        if sum(forms) != 1:
            msg = "give exactly one of: low and high (a range), choices (a list), or value (fixed)"
            raise ValueError(msg)
        if self.choices is not None and not self.choices:
            raise ValueError("choices is empty; list at least one value")
        if forms[0]:
            self._check_range()

        return self

    def _check_range(self) -> None:
        if self.low is None or self.high is None:
            raise ValueError("a range needs both low and high")
        if self.low > self.high:
            msg = f"empty range: low ({self.low}) is greater than high ({self.high})"
            raise ValueError(msg)
        if self.log and self.low <= 0:
            msg = f"a log-scale range needs low > 0 but got low={self.low}"
            raise ValueError(msg)
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined")


class SearchSpaceSection(_Section):
    """The hyperparameters sampled for each trial. `learning_rate`, `epochs` and `batch_size` are
    required; every other one is fixed at its default unless given."""

    learning_rate: ParamSpec
    epochs: ParamSpec
    batch_size: ParamSpec
    weight_decay: ParamSpec | None = None
    foreground_ratio: ParamSpec | None = None
    loss: ParamSpec | None = None
    architecture: ParamSpec | None = None
    deep_supervision: ParamSpec | None = None
    dropout: ParamSpec | None = None

    @model_validator(mode="after")
    def _values_fit_each_parameter(self) -> SearchSpaceSection:
        for name, rule in PARAMETER_RULES.items():
            spec = getattr(self, name)
            if spec is not None:
                rule.check(name, spec)

        return self


class ParameterRule:
    """The values one searched hyperparameter accepts: its kind, its bounds or its choices."""

    def __init__(self, kind: type, minimum: float | None = None, maximum: float | None = None,
                 allowed: tuple = ()) -> None:
        self.kind = kind
        self.minimum = minimum
        self.maximum = maximum
        self.allowed = allowed

    def check(self, name: str, spec: ParamSpec) -> None:
        values = self._values(spec)
        if self.allowed:
            bad = [value for value in values if value not in self.allowed]
            if bad:
                msg = f"{name}: {bad} not valid; choose from {list(self.allowed)}"
                raise ValueError(msg)
            return
        if any(isinstance(v, (str, bool)) for v in values):
            msg = f"{name} must be a number but got {values}"
            raise ValueError(msg)
        if self.kind is int and any(float(v) != int(float(v)) for v in values):
            msg = f"{name} must be a whole number but got {values}"
            raise ValueError(msg)
        self._check_bounds(name, values)

    def _values(self, spec: ParamSpec) -> list:
        if spec.choices is not None:
            return list(spec.choices)
        if spec.value is not None:
            return [spec.value]
        if self.allowed:
            msg = f"a range is not valid here; give choices from {list(self.allowed)}"
            raise ValueError(msg)
        return [spec.low, spec.high]

    def _check_bounds(self, name: str, values: list) -> None:
        if self.minimum is not None and min(values) < self.minimum:
            msg = f"{name} must be at least {self.minimum} but got {min(values)}"
            raise ValueError(msg)
        if self.maximum is not None and max(values) > self.maximum:
            msg = f"{name} must be at most {self.maximum} but got {max(values)}"
            raise ValueError(msg)


PARAMETER_RULES: dict[str, ParameterRule] = {
    "learning_rate": ParameterRule(float, minimum=1e-7, maximum=1.0),
    "epochs": ParameterRule(int, minimum=1),
    "batch_size": ParameterRule(int, minimum=1),
    "weight_decay": ParameterRule(float, minimum=0.0, maximum=1.0),
    "foreground_ratio": ParameterRule(float, minimum=0.0, maximum=1.0),
    "loss": ParameterRule(str, allowed=("dice_ce", "dice_focal", "generalized_dice_focal")),
    "architecture": ParameterRule(str, allowed=("unet", "attention_unet", "dynunet")),
    "deep_supervision": ParameterRule(bool, allowed=(True, False)),
    "dropout": ParameterRule(float, minimum=0.0, maximum=0.9),
}


class SamplerSection(_Section):
    name: SamplerName = "tpe"
    seed: int | None = 0
    n_startup_trials: int = Field(default=5, ge=0)


class PrunerSection(_Section):
    name: PrunerName = "median"
    n_startup_trials: int = Field(default=3, ge=0)
    n_warmup_steps: int = Field(default=2, ge=0)
    interval_steps: int = Field(default=1, ge=1)
    percentile: float = Field(default=25.0, gt=0.0, lt=100.0)
    min_resource: int = Field(default=1, ge=1)
    reduction_factor: int = Field(default=3, ge=2)


class BudgetSection(_Section):
    """When the study stops: after `n_trials` finished trials, after `timeout` seconds, or both."""

    n_trials: int | None = Field(default=None, ge=1)
    timeout: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _some_limit(self) -> BudgetSection:
        if self.n_trials is None and self.timeout is None:
            raise ValueError("budget needs n_trials, timeout or both, or the study would never end")

        return self


class TrainingSection(_Section):
    """Settings shared by every trial that are not searched."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: Literal["auto", "on", "off"] = "auto"
    seed: int = 0
    iterations_per_epoch: int = Field(default=50, ge=1)
    num_workers: int = Field(default=0, ge=0)
    sw_overlap: float = Field(default=0.25, ge=0.0, lt=1.0)
    max_retries: int = Field(default=1, ge=0)


class StudyConfig(_Section):
    """A whole study YAML file."""

    study: StudySection
    data: DataSection
    model: ModelSection
    search_space: SearchSpaceSection
    sampler: SamplerSection = SamplerSection()
    pruner: PrunerSection = PrunerSection()
    budget: BudgetSection
    training: TrainingSection = TrainingSection()
