"""Importers that turn other formats into the Decathlon layout: 2D pictures and per-structure masks."""
