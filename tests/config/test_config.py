"""Study config validation: valid configs load, invalid ones name the key and the fix."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from hpo.config import load_config, parse_config
from hpo.errors import ConfigError
from tests.conftest import tiny_study_dict, write_config

BASE = tiny_study_dict(Path("/data/hippocampus"), Path("/runs"))


def with_change(path: str, value) -> dict:
    """A copy of BASE with the dotted key set to value (or removed when value is ...)."""
    config = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = config
    for part in parents:
        node = node.setdefault(part, {})
    if value is ...:
        node.pop(last)
    else:
        node[last] = value
    return config


VALID = [
    ("base", BASE),
    ("random sampler", with_change("sampler.name", "random")),
    ("cmaes sampler", with_change("sampler.name", "cmaes")),
    ("hyperband pruner", with_change("pruner.name", "hyperband")),
    ("no pruner", with_change("pruner.name", "none")),
    ("timeout only", with_change("budget", {"timeout": 60})),
    ("fixed learning rate", with_change("search_space.learning_rate", {"value": 0.001})),
    ("epoch range with step", with_change("search_space.epochs", {"low": 2, "high": 10, "step": 2})),
    ("loss choices", with_change("search_space.loss", {"choices": ["dice_ce", "dice_focal"]})),
    ("2D model", with_change("model", {"spatial_dims": 2, "patch_size": [64, 64], "channels": [8, 16, 32]})),
    ("explicit folds", with_change("data.folds", {"training": ["a", "b"], "validation": ["c"]})),
]

INVALID = [
    # typo in a key: the message names the nearest valid key
    ("unknown key", with_change("study.nmae", "x"), r"study\.nmae: unknown key; did you mean 'name'\?"),
    ("unknown section", with_change("trainer", {}), r"trainer: unknown key; did you mean 'training'\?"),
    ("unknown search parameter", with_change("search_space.lr", {"value": 1}), r"search_space\.lr: unknown key.*learning_rate"),
    # wrong types
    ("epochs as text", with_change("search_space.epochs", {"value": "ten"}), r"epochs must be a number"),
    ("patch size as text", with_change("model.patch_size", "big"), r"model\.patch_size"),
    ("fractional epochs", with_change("search_space.epochs", {"low": 1.5, "high": 4}), r"epochs must be a whole number"),
    # empty or impossible ranges
    ("empty range", with_change("search_space.learning_rate", {"low": 0.1, "high": 0.01}), r"empty range: low \(0\.1\) is greater than high \(0\.01\)"),
    ("log range from zero", with_change("search_space.learning_rate", {"low": 0.0, "high": 0.1, "log": True}), r"log-scale range needs low > 0"),
    ("empty choices", with_change("search_space.batch_size", {"choices": []}), r"choices is empty"),
    ("range and choices", with_change("search_space.batch_size", {"low": 1, "high": 4, "choices": [2]}), r"exactly one of"),
    ("batch size zero", with_change("search_space.batch_size", {"choices": [0, 2]}), r"batch_size must be at least 1"),
    # bad choices name the valid ones
    ("unknown sampler", with_change("sampler.name", "grid"), r"sampler\.name: must be one of 'tpe', 'random' or 'cmaes'"),
    ("unknown pruner", with_change("pruner.name", "aggressive"), r"pruner\.name: must be one of"),
    ("unknown loss", with_change("search_space.loss", {"choices": ["dice"]}), r"loss: \['dice'\] not valid; choose from \['dice_ce'"),
    ("loss as range", with_change("search_space.loss", {"low": 0, "high": 1}), r"a range is not valid here"),
    ("unknown device", with_change("training.device", "tpu"), r"training\.device: must be one of 'auto', 'cpu' or 'cuda'"),
    # missing required parts
    ("missing learning rate", with_change("search_space.learning_rate", ...), r"search_space\.learning_rate: required key is missing"),
    ("no budget", with_change("budget", {}), r"budget needs n_trials, timeout or both"),
    ("missing data path", with_change("data.path", ...), r"data\.path: required key is missing"),
    # model shape rules
    ("patch dims mismatch", with_change("model.patch_size", [16, 16]), r"patch_size has 2 values but model\.spatial_dims is 3"),
    ("patch not divisible", with_change("model.patch_size", [16, 16, 15]), r"multiples of 2 .* but got \[16, 16, 15\]"),
    ("bad orientation", with_change("data.orientation", "XYZ"), r"data\.orientation"),
    ("folds overlap", with_change("data.folds", {"training": ["a", "b"], "validation": ["b"]}), r"cases \['b'\] are in both"),
    ("heartbeat longer than grace", with_change("study.grace_period", 10) | {"study": {**BASE["study"], "grace_period": 10, "heartbeat_interval": 20}}, r"grace_period \(10 s\) must be longer"),
]


@pytest.mark.parametrize(("case", "config"), VALID, ids=[case for case, _ in VALID])
def test_valid_config_loads(case, config):
    parsed = parse_config(config)
    assert parsed.study.name == "tiny", case


@pytest.mark.parametrize(("case", "config", "message"), INVALID, ids=[case for case, _, _ in INVALID])
def test_invalid_config_names_key(case, config, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(config)


def test_errors_listed_together():
    config = with_change("sampler.name", "grid")
    config["pruner"]["name"] = "aggressive"
    with pytest.raises(ConfigError) as raised:
        parse_config(config)
    assert "sampler.name" in str(raised.value)
    assert "pruner.name" in str(raised.value)


def test_relative_paths_follow_config_file(tmp_path):
    config = tiny_study_dict(Path("data/set"), Path("../runs"))
    config["study"]["storage"] = "sqlite:///db/study.db"
    (tmp_path / "configs").mkdir()
    loaded = load_config(write_config(tmp_path / "configs" / "study.yaml", config))
    assert loaded.data.path == str(tmp_path / "configs" / "data" / "set")
    assert loaded.study.output_dir == str(tmp_path / "runs")
    assert loaded.data.cache_dir == str(tmp_path / "runs" / "cache")
    assert loaded.study.storage == f"sqlite:///{tmp_path / 'configs' / 'db' / 'study.db'}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("study: [unclosed", r"is not valid YAML"),
        ("- just\n- a list\n", r"must contain a mapping of sections"),
    ],
)
def test_unreadable_yaml_names_file(tmp_path, text, message):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match=r"missing\.yaml not found"):
        load_config(tmp_path / "missing.yaml")


def test_example_configs_validate():
    for path in sorted(Path(__file__).resolve().parents[2].joinpath("study_configs").glob("*.yaml")):
        assert load_config(path).study.name, path
