"""The engine's Transform features: Transform's ``price_log_z`` per catalog row, the re-ranker's ``price`` feature
(``features.candidate_columns``; ``price_in_range`` stays on the raw price, which the query's numbers are compared
with), and the transform graph of :mod:`modules.transform` it came from, which the engine keeps so that live-added
rows get the same definition (``live.add_items``; ``SearchEngine.prepare_add`` loads it ahead).

The per-row values are the graph's: read from the pipeline's Transform outputs (IndexBuilder: ``transform_graph`` +
``transformed_examples``, joined to catalog rows by item_id) or, outside the pipeline, from tf.Transform's in-process
analysis of the catalog (``modules.recommend.item_transform``, the two-tower's reader too). A saved engine holds
``price_log_z.npy`` and its own copy of the graph (``transform_graph/``); an engine saved before them has neither
and keeps the raw price as the feature, the one its ranker was trained on. ``tensorflow_transform`` is imported on
the first live add, never when an engine loads.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modules.settings import load_section

TRANSFORM_DIR = "transform_graph"   # the graph's copy inside a saved engine
PRICE_FILE = "price_log_z.npy"


@dataclass(eq=False)
class ItemGraph:
    """The transform graph (Transform's ``transform_graph`` layout) an engine's per-row features came from."""

    directory: str
    keepalive: Any = field(default=None, repr=False)  # an in-process analysis (its temporary directory lives with it)
    _output: Any = field(default=None, init=False, repr=False)
    _layer: Any = field(default=None, init=False, repr=False)

    def load(self) -> None:
        """Import tensorflow_transform (TensorFlow with it: a serving process that runs the ONNX query encoder has
        not imported it; ~15 s on a loaded 2-core machine) and load the graph's layer, once. ``price_log_z`` calls
        it; serving calls it before taking the bundle's write lock, so the first live add blocks no search."""
        if self._layer is None:
            import tensorflow_transform as tft

            output = tft.TFTransformOutput(self.directory)
            self._layer, self._output = output.transform_features_layer(), output

    def price_log_z(self, items: pd.DataFrame) -> np.ndarray:
        """The graph's ``price_log_z`` of raw rows (item_id, category, brand, price), float32 in row order (the
        first call loads the graph, :meth:`load`)."""
        from modules.recommend.item_transform import transform_rows

        self.load()
        return transform_rows(self._output, items, layer=self._layer)["price_log_z"]


def catalog_price_log_z(items: pd.DataFrame, params: Mapping[str, Any], transform_dir: str | Path | None = None,
                        examples_dir: str | Path | None = None) -> tuple[np.ndarray, ItemGraph, str]:
    """``(price_log_z of each row of items, the graph, source)``: Transform's outputs when ``transform_dir`` and
    ``examples_dir`` are given (source ``transformed_examples``), else the catalog analysed in-process
    (``in_process``, ``recommend.n_price_bands`` buckets as the pipeline's Transform is configured)."""
    from modules.recommend.item_transform import item_transform

    n_bands = load_section("recommend", params.get("recommend")).n_price_bands
    table = item_transform(items, n_bands, transform_dir, examples_dir)
    return table.features["price_log_z"], ItemGraph(table.transform_dir, keepalive=table), table.source
