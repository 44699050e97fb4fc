"""Exported models: the bundle writer and reader, and prediction on new NIfTI files."""

from hpo.export.bundle import BundleError, LoadedModel, ModelDescription, load_bundle, read_description, write_bundle

__all__ = ["BundleError", "LoadedModel", "ModelDescription", "load_bundle", "read_description", "write_bundle"]
