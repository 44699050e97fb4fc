"""The study YAML: schema, loading and readable validation errors."""

from hpo.config.loader import load_config, parse_config, study_dir
from hpo.config.schema import StudyConfig

__all__ = ["StudyConfig", "load_config", "parse_config", "study_dir"]
