"""The label table of `hpo data import-structures`: structure names, their label values, and which mask files hold them.

Written inline (`OpticNerve_L=1,OpticNerve_R=2` or `OpticNerve_L: 1, OpticNerve_R: 2`) or as a
YAML file, either a flat mapping of names to values or one with two sections:

    labels:                      # structure name: label value (1 or more; 0 is background)
      OpticNerve_L: 1
    files:                       # mask file name without suffix: structure name
      Optic-Nerve-Lt: OpticNerve_L
      "{case}_OAR_OpticNrv_L": OpticNerve_L

A mask file belongs to a structure when its name without suffix equals the structure's name or
one of its `files` entries, ignoring letter case. In `files`, `{case}` is replaced by the case
identifier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from hpo.errors import DatasetError

NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")
PAIR = re.compile(r"(?P<name>[^=:\s]+)\s*[=:]\s*(?P<value>\S+)")


@dataclass(frozen=True)
class LabelTable:
    """Structure name to label value, and mask file names (which may contain `{case}`) to structure names."""

    values: dict[str, int]
    files: dict[str, str]

    def structure_for(self, file_stem: str, case_id: str) -> str | None:
        """Return the structure whose mask the file contains, or None when the table does not list the file."""
        expected = file_stem.lower()
        for name in self.values:
            if name.lower() == expected:
                return name
        for pattern, name in self.files.items():
            if pattern.replace("{case}", case_id).lower() == expected:
                return name
        return None

    def names_by_value(self) -> dict[int, str]:
        return {value: name for name, value in sorted(self.values.items(), key=lambda item: item[1])}


def load_label_table(labels: str, files: str | None = None) -> LabelTable:
    """Build a table from `--labels` (a YAML file or inline pairs) and optional inline `--files` pairs."""
    path = Path(labels)
    if path.suffix.lower() in (".yaml", ".yml") or path.is_file():
        values, aliases = _read_yaml(path)
    else:
        values, aliases = {name: _label_value(name, value, "--labels") for name, value in _pairs(labels, "--labels").items()}, {}
    if files:
        aliases.update(_pairs(files, "--files"))
    return _checked(values, aliases, source=str(labels))


def _pairs(text: str, option: str) -> dict[str, str]:
    pairs = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        match = PAIR.fullmatch(item)
        if match is None:
            msg = f"{option}: '{item}' is not a NAME=VALUE pair; write for example OpticNerve_L=1,OpticNerve_R=2"
            raise DatasetError(msg)
        pairs[match["name"]] = match["value"]
    if not pairs:
        raise DatasetError(f"{option} is empty; write for example OpticNerve_L=1,OpticNerve_R=2")
    return pairs


def _read_yaml(path: Path) -> tuple[dict[str, int], dict[str, str]]:
    if not path.is_file():
        raise DatasetError(f"label table {path} not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise DatasetError(f"label table {path} is not valid YAML: {error}") from error
    if not isinstance(raw, dict) or not raw:
        raise DatasetError(f"label table {path} must be a mapping of structure names to label values")

    if "labels" in raw:
        unknown = sorted(set(raw) - {"labels", "files"})
        if unknown:
            raise DatasetError(f"label table {path}: unknown sections {unknown}; only 'labels' and 'files' are read")
        labels, files = raw["labels"], raw.get("files") or {}
    else:
        labels, files = raw, {}
    if not isinstance(labels, dict) or not isinstance(files, dict):
        raise DatasetError(f"label table {path}: 'labels' and 'files' must be mappings")
    values = {str(name): _label_value(str(name), value, str(path)) for name, value in labels.items()}
    return values, {str(stem): str(name) for stem, name in files.items()}


def _label_value(name: str, value, source: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if number < 1 or number > 255:
        msg = f"{source}: label value of '{name}' must be a whole number from 1 to 255 (0 is background) but got {value!r}"
        raise DatasetError(msg)
    return number


def _checked(values: dict[str, int], files: dict[str, str], source: str) -> LabelTable:
    bad_names = [name for name in values if not NAME.match(name)]
    if bad_names:
        raise DatasetError(f"{source}: structure names {bad_names} may only contain letters, digits and _ . + -")
    repeated = sorted({value for value in values.values() if list(values.values()).count(value) > 1})
    if repeated:
        shared = {value: [n for n, v in values.items() if v == value] for value in repeated}
        raise DatasetError(f"{source}: each label value must belong to one structure, but {shared} share values")
    unknown = sorted({name for name in files.values() if name not in values})
    if unknown:
        msg = f"{source}: files map to structures {unknown} that have no label value; add them to the labels or fix the names"
        raise DatasetError(msg)
    return LabelTable(dict(values), dict(files))
