"""Load a study YAML file into a validated, frozen `StudyConfig` with readable errors."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from hpo.config.schema import StudyConfig
from hpo.errors import ConfigError


def load_config(path: str | os.PathLike) -> StudyConfig:
    """Read, validate and resolve a study config.

    Relative paths in the file (`data.path`, `study.output_dir`, `data.cache_dir`, a SQLite
    storage path) are resolved against the folder that contains the config file, so the same study
    is found whatever the current directory.
    """
    config_path = Path(path)
    if not config_path.is_file():
        msg = f"Study config {config_path} not found; pass the path to a YAML file such as study_configs/hippocampus.yaml."
        raise ConfigError(msg)
    try:
        raw = yaml.safe_load(config_path.read_text())
    except yaml.YAMLError as error:
        msg = f"{config_path} is not valid YAML: {error}"
        raise ConfigError(msg) from error
    if not isinstance(raw, dict):
        msg = f"{config_path} must contain a mapping of sections (study, data, model, ...) but got {type(raw).__name__}."
        raise ConfigError(msg)

    config = parse_config(raw, source=str(config_path))
    return resolve_paths(config, config_path.resolve().parent)


def parse_config(raw: dict[str, Any], source: str = "config") -> StudyConfig:
    """Validate a config mapping, turning pydantic's errors into one message per broken key."""
    try:
        return StudyConfig.model_validate(raw)
    except ValidationError as error:
        lines = [describe_error(item) for item in error.errors()]
        msg = f"{source} is invalid:\n" + "\n".join(f"  - {line}" for line in lines)
        raise ConfigError(msg) from None


def describe_error(item: dict[str, Any]) -> str:
    """Turn one pydantic error into a sentence naming the key, the problem and the valid choices."""
    location = [str(part) for part in item["loc"] if not str(part).startswith("function-after")]
    key = ".".join(location) or "(top level)"
    if item["type"] == "extra_forbidden":
        return _describe_unknown_key(location)
    if item["type"] == "missing":
        return f"{key}: required key is missing"
    message = str(item["msg"]).removeprefix("Value error, ")
    if item["type"] == "literal_error":
        message = message.replace("Input should be", "must be one of")
    return f"{key}: {message} (got {item.get('input')!r})" if "input" in item and item["type"] != "value_error" else f"{key}: {message}"


def _describe_unknown_key(location: list[str]) -> str:
    valid = _valid_keys(location[:-1])
    unknown = location[-1]
    nearest = difflib.get_close_matches(unknown, valid, n=1)
    hint = f"; did you mean '{nearest[0]}'?" if nearest else ""
    return f"{'.'.join(location)}: unknown key{hint} Valid keys here: {', '.join(valid)}"


def _valid_keys(parent: list[str]) -> list[str]:
    model: type[BaseModel] | None = StudyConfig
    for part in parent:
        field = model.model_fields.get(part) if model else None
        model = _model_of(field.annotation) if field else None
    return sorted(model.model_fields) if model else []


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()):
        found = _model_of(argument)
        if found is not None:
            return found
    return None


def resolve_paths(config: StudyConfig, base: Path) -> StudyConfig:
    """Return a copy of the config whose paths are absolute, relative ones taken from `base`."""
    output_dir = _absolute(config.study.output_dir, base)
    cache_dir = _absolute(config.data.cache_dir, base) if config.data.cache_dir else output_dir / "cache"
    data = config.data.model_copy(update={"path": str(_absolute(config.data.path, base)), "cache_dir": str(cache_dir)})
    storage = config.study.storage
    if storage and storage.startswith("sqlite:///") and not storage.startswith("sqlite:////"):
        storage = "sqlite:///" + str(_absolute(storage.removeprefix("sqlite:///"), base))
    study = config.study.model_copy(update={"output_dir": str(output_dir), "storage": storage})
    return config.model_copy(update={"data": data, "study": study})


def _absolute(path: str, base: Path) -> Path:
    expanded = Path(os.path.expandvars(os.path.expanduser(path)))
    return expanded if expanded.is_absolute() else (base / expanded).resolve()


def study_dir(config: StudyConfig) -> Path:
    """Return the folder of one study's outputs: checkpoints, artifacts and the embedded storage file."""
    return Path(config.study.output_dir) / config.study.name
