"""Datasets: layouts, validation, preprocessing and its cache, splits, patch sampling and importers."""
