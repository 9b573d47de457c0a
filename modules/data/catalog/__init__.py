"""Synthetic catalog generator: items, users, interactions, judged queries and procedural images."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from modules.data.catalog.generate import generate_catalog  # noqa: E402

__all__ = ["generate_catalog"]
