"""The items' transformed features, one place for the two-tower and the search engine's re-ranker: the TFX Transform
graph of :mod:`modules.transform` and the per-item table it yields, aligned to catalog rows. The two-tower
(``modules.recommend.two_tower``) reads every feature; the search engine (``modules.search.transformed``) reads
``price_log_z``, its re-ranker's ``price`` feature, and applies the graph to live-added items (:func:`transform_rows`).

In the pipeline, Transform has already run: :func:`item_transform` reads its ``transform_graph`` and its
``transformed_examples`` (gzipped TFRecords under ``Split-*/``), joined to the catalog by the passed-through
``item_id``. Outside the pipeline (offline evaluation, tests, benchmarks) the same ``preprocessing_fn`` is analysed
in-process with tf.Transform's Beam API (DirectRunner) over the items table (:func:`analyse_items`), then applied
with the graph's Keras layer. Either way the features come from one definition, and :func:`raw_item_inputs` builds
the graph's raw inputs for new rows (the two-tower's serving signature, live-added items in the search engine).
"""
from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402

from modules.transform import OOV_BUCKETS, RAW_FEATURES, preprocessing_fn  # noqa: E402

# transformed keys the models read: the integer ids (embedding inputs) and the float features
INT_FEATURES = ("item_id_idx", "category_idx", "brand_idx", "price_bucket")
FLOAT_FEATURES = ("price_log_z",)
_RAW_DTYPES = {"item_id": tf.string, "category": tf.string, "brand": tf.string, "price": tf.float32}


def _raw_columns(items: pd.DataFrame) -> dict[str, np.ndarray]:
    """The graph's raw columns of ``items`` (``RAW_FEATURES``): the three string columns as str, price as float32
    (missing or unparsable: 0)."""
    cols = {k: items[k].astype(str).to_numpy() for k in RAW_FEATURES if k != "price"}
    return {**cols, "price": pd.to_numeric(items["price"], errors="coerce").fillna(0.0).to_numpy(np.float32)}


def analyse_items(items: pd.DataFrame, n_price_bands: int, out_dir: str | Path) -> str:
    """Analyse :func:`modules.transform.preprocessing_fn` over ``items`` in-process (tf.Transform Beam API,
    DirectRunner) and write the transform graph into ``out_dir`` in the layout of TFX Transform's
    ``transform_graph`` (``transform_fn/``, ``transformed_metadata/``, ``metadata/`` = the raw schema)."""
    import apache_beam as beam
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

    spec = {k: tf.io.VarLenFeature(d) for k, d in _RAW_DTYPES.items()}  # as ExampleGen's items schema gives them
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    cols = {k: v.tolist() for k, v in _raw_columns(items).items()}
    rows = [{"item_id": [i], "category": [c], "brand": [b], "price": [p]}
            for i, c, b, p in zip(cols["item_id"], cols["category"], cols["brand"], cols["price"], strict=True)]
    fn = functools.partial(preprocessing_fn, custom_config={"n_price_bands": int(n_price_bands)})
    out_dir = str(out_dir)
    with tempfile.TemporaryDirectory(prefix="pixelmatch-tft-") as tmp:
        with beam.Pipeline(runner="DirectRunner") as pipeline, tft_beam.Context(temp_dir=tmp):
            transform_fn = (pipeline | beam.Create(rows), metadata) | tft_beam.AnalyzeDataset(fn)
            _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
    metadata_io.write_metadata(metadata, os.path.join(out_dir, tft.TFTransformOutput.RAW_METADATA_DIR))
    return out_dir


def raw_item_inputs(tft_output: tft.TFTransformOutput, item_id: Any, category: Any, brand: Any, price: Any
                    ) -> dict[str, tf.Tensor | tf.SparseTensor]:
    """The transform graph's raw inputs for a batch of items given as [batch] tensors or arrays: each in the form the
    graph's raw feature spec names (one value per row: a SparseTensor for a VarLen feature, [batch, 1] for FixedLen)."""
    spec = tft_output.raw_feature_spec()
    given = {"item_id": item_id, "category": category, "brand": brand, "price": price}
    out: dict[str, tf.Tensor | tf.SparseTensor] = {}
    for key in RAW_FEATURES:
        x = tf.reshape(tf.convert_to_tensor(given[key], dtype=_RAW_DTYPES[key]), [-1])
        if isinstance(spec[key], tf.io.VarLenFeature):  # every row holds its value ("" and 0.0 included)
            n = tf.shape(x, out_type=tf.int64)[0]
            out[key] = tf.SparseTensor(tf.stack([tf.range(n), tf.zeros([n], tf.int64)], axis=1), x,
                                       tf.stack([n, tf.constant(1, tf.int64)]))
        else:
            out[key] = x[:, None]
    return out


def transform_rows(tft_output: tft.TFTransformOutput, items: pd.DataFrame, batch: int = 8192,
                   layer: Any = None) -> dict[str, np.ndarray]:
    """Apply the transform graph to raw item rows (item_id, category, brand, price): the model features of each row,
    in row order (``INT_FEATURES`` as int64, ``FLOAT_FEATURES`` as float32). ``layer``: the graph's
    ``transform_features_layer()`` when the caller keeps one (building it loads the graph)."""
    layer = layer if layer is not None else tft_output.transform_features_layer()
    cols = _raw_columns(items)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in INT_FEATURES + FLOAT_FEATURES}
    for s in range(0, len(items), batch):
        raw = raw_item_inputs(tft_output, cols["item_id"][s:s + batch], cols["category"][s:s + batch],
                              cols["brand"][s:s + batch], cols["price"][s:s + batch])
        out = layer(raw)
        for k in parts:
            parts[k].append(np.asarray(tf.reshape(out[k], [-1])))
    return {k: (np.concatenate(v) if v else np.zeros(0)).astype(np.float32 if k in FLOAT_FEATURES else np.int64)
            for k, v in parts.items()}


def read_transformed_examples(examples_dir: str | Path, tft_output: tft.TFTransformOutput) -> pd.DataFrame:
    """Transform's ``transformed_examples`` (every ``Split-*/`` of gzipped TFRecords) as one row per item: item_id
    and the model features."""
    files = sorted(tf.io.gfile.glob(os.path.join(str(examples_dir), "Split-*", "*")))
    if not files:
        raise FileNotFoundError(f"no transformed examples under {examples_dir}/Split-*/")
    spec = tft_output.transformed_feature_spec()
    keys = ("item_id",) + INT_FEATURES + FLOAT_FEATURES
    cols: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(8192)
    for batch in ds.map(lambda s: tf.io.parse_example(s, {k: spec[k] for k in keys})):
        for k in keys:
            v = batch[k]
            cols[k].append(np.asarray(tf.reshape(tf.sparse.to_dense(v) if isinstance(v, tf.SparseTensor) else v, [-1])))
    frame = pd.DataFrame({k: np.concatenate(v) for k, v in cols.items()})
    frame["item_id"] = frame["item_id"].map(lambda b: b.decode("utf-8"))
    return frame


@dataclass
class ItemTransform:
    """The transform graph and the items' transformed features, aligned to catalog rows (``item_ids`` order)."""

    transform_dir: str
    item_ids: list[str]
    features: dict[str, np.ndarray]  # INT_FEATURES (int64) and FLOAT_FEATURES (float32), one value per catalog row
    source: str  # "transformed_examples" (the pipeline's Transform) or "in_process" (analysed here)
    _keepalive: Any = field(default=None, repr=False)  # the temporary directory of an in-process analysis

    @functools.cached_property
    def output(self) -> tft.TFTransformOutput:
        return tft.TFTransformOutput(self.transform_dir)

    def input_size(self, key: str) -> int:
        """Embedding input size of an integer feature: vocabulary + OOV bucket for ``*_idx``; the number of buckets
        (the transformed schema's int domain) for ``price_bucket``."""
        if key.endswith("_idx"):
            return int(self.output.vocabulary_size_by_name(key[: -len("_idx")])) + OOV_BUCKETS
        for f in self.output.transformed_metadata.schema.feature:
            if f.name == key and f.HasField("int_domain"):
                return int(f.int_domain.max) + 1
        raise ValueError(f"the transform graph gives no int domain for {key!r}")

    def sizes(self) -> dict[str, int]:
        return {k: self.input_size(k) for k in INT_FEATURES}


def _aligned(frame: pd.DataFrame, item_ids: list[str]) -> dict[str, np.ndarray]:
    """The transformed rows of ``frame`` in ``item_ids`` order (every catalog id must be present exactly once)."""
    frame = frame.drop_duplicates("item_id").set_index("item_id")
    missing = [i for i in item_ids if i not in frame.index]
    if missing:
        raise ValueError(f"{len(missing)} catalog items have no transformed row (e.g. {missing[0]!r})")
    rows = frame.loc[item_ids]
    return {k: rows[k].to_numpy(np.float32 if k in FLOAT_FEATURES else np.int64) for k in INT_FEATURES + FLOAT_FEATURES}


_ANALYSED: dict[str, ItemTransform] = {}  # in-process analyses of this process, by items fingerprint (last one kept)


def _fingerprint(items: pd.DataFrame, n_price_bands: int) -> str:
    import hashlib

    h = hashlib.sha256(str(int(n_price_bands)).encode())
    for k in RAW_FEATURES:
        h.update(pd.util.hash_pandas_object(items[k].astype(str), index=False).to_numpy().tobytes())
    return h.hexdigest()


def item_transform(items: pd.DataFrame, n_price_bands: int, transform_dir: str | Path | None = None,
                   examples_dir: str | Path | None = None) -> ItemTransform:
    """The items' transformed features in ``items`` row order.

    ``transform_dir`` (Transform's ``transform_graph``) with ``examples_dir`` (its ``transformed_examples``): read
    them, the pipeline's case. ``transform_dir`` alone: apply that graph to ``items``. Neither: analyse
    :func:`modules.transform.preprocessing_fn` over ``items`` in-process first (``n_price_bands`` buckets); the
    last such analysis is reused for the same items (id, category, brand, price) and bucket count."""
    item_ids = items["item_id"].astype(str).tolist()
    keep, key = None, None
    if transform_dir is None:
        key = _fingerprint(items, n_price_bands)
        if key in _ANALYSED:  # the same items analysed again in this process (the analysis is deterministic)
            return _ANALYSED[key]
        keep = tempfile.TemporaryDirectory(prefix="pixelmatch-transform-")
        transform_dir = analyse_items(items, n_price_bands, keep.name)
    out = tft.TFTransformOutput(str(transform_dir))
    if examples_dir is not None:
        feats, source = _aligned(read_transformed_examples(examples_dir, out), item_ids), "transformed_examples"
    else:
        feats = transform_rows(out, items)
        source = "in_process" if keep is not None else "transform_graph"
    result = ItemTransform(str(transform_dir), item_ids, feats, source, keep)
    if key is not None:
        _ANALYSED.clear()
        _ANALYSED[key] = result
    return result
