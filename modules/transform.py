"""TFX Transform ``preprocessing_fn`` for the items table: the one definition of the item features.

Outputs (one row per item):
    item_id         the raw id, passed through so transformed rows join back to catalog rows
    item_id_idx     vocabulary index of the id (new SKUs: the OOV bucket, index = vocabulary size)
    category_idx    vocabulary index of the lower-cased, stripped category (OOV bucket likewise)
    brand_idx       vocabulary index of the lower-cased, stripped brand (OOV bucket likewise)
    price_bucket    quantile bucket of the price, ``custom_config["n_price_bands"]`` buckets (0 .. n-1)
    price_log_z     z-score of log1p(price) over the catalog

Who reads what, always through :mod:`modules.recommend.item_transform` (never a second definition):

- the two-tower (TwoTowerTrainer): its candidate tower trains on ``item_id_idx``, ``category_idx``, ``brand_idx``,
  ``price_bucket`` and ``price_log_z``, and its exported ``candidate_embedding`` signature applies this graph to
  raw features;
- the search engine (IndexBuilder, ``modules.search.build.build_engine`` via ``modules.search.transformed``): it
  keeps ``price_log_z`` per catalog row as the LambdaMART re-ranker's ``price`` feature (RankerTrainer trains on it,
  serving re-ranks with it; ``price_in_range`` stays on the raw price) and a copy of this graph, which it applies
  to live-added items.

In the pipeline the TFX Transform component runs it (``custom_config`` from params.yaml) and both components read
its ``transform_graph`` and ``transformed_examples``; outside it (``pixelmatch benchmark``, offline evaluation,
tests), :func:`modules.recommend.item_transform.analyse_items` runs the same function in-process.
"""
from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_transform as tft

VOCAB_FEATURES = ("item_id", "category", "brand")
OOV_BUCKETS = 1
RAW_FEATURES = ("item_id", "category", "brand", "price")  # the raw columns this function reads


def _dense(x: tf.Tensor | tf.SparseTensor, default: str | float) -> tf.Tensor:
    """A [batch] dense tensor from a (possibly sparse, possibly missing-valued) single-value feature."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(tf.sparse.reset_shape(x, [x.dense_shape[0], 1]), default_value=default)
    return tf.reshape(x, [-1])


def preprocessing_fn(inputs: dict[str, tf.Tensor], custom_config: dict[str, Any]) -> dict[str, tf.Tensor]:
    """``custom_config["n_price_bands"]``: the number of price buckets (params.yaml ``recommend.n_price_bands``)."""
    n_buckets = int(custom_config["n_price_bands"])
    item_id = _dense(inputs["item_id"], "")
    outputs: dict[str, tf.Tensor] = {"item_id": item_id}
    for key in VOCAB_FEATURES:
        values = item_id if key == "item_id" else tf.strings.strip(tf.strings.lower(_dense(inputs[key], "")))
        outputs[f"{key}_idx"] = tft.compute_and_apply_vocabulary(
            values, vocab_filename=key, num_oov_buckets=OOV_BUCKETS, default_value=-1
        )
    price = tf.maximum(_dense(inputs["price"], 0.0), 0.0)
    outputs["price_bucket"] = tft.bucketize(price, num_buckets=n_buckets)
    outputs["price_log_z"] = tft.scale_to_z_score(tf.math.log1p(price))
    return outputs
