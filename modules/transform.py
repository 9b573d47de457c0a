"""TFX Transform ``preprocessing_fn`` for the items table.

Vocabularies for item_id, category and brand (the serving side maps raw strings to the same ids
through the exported transform graph) and price scaling (z-score of log1p(price), and 0-1).
"""
from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

VOCAB_FEATURES = ("item_id", "category", "brand")
OOV_BUCKETS = 1


def _dense(x: tf.Tensor | tf.SparseTensor, default: str | float) -> tf.Tensor:
    """A [batch] dense tensor from a (possibly sparse, possibly missing-valued) single-value feature."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.to_dense(tf.sparse.reset_shape(x, [x.dense_shape[0], 1]), default_value=default)
    return tf.reshape(x, [-1])


def preprocessing_fn(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    outputs: dict[str, tf.Tensor] = {}
    for key in VOCAB_FEATURES:
        values = tf.strings.strip(tf.strings.lower(_dense(inputs[key], ""))) if key != "item_id" else _dense(inputs[key], "")
        outputs[f"{key}_idx"] = tft.compute_and_apply_vocabulary(
            values, vocab_filename=key, num_oov_buckets=OOV_BUCKETS, default_value=-1
        )
    price = tf.maximum(_dense(inputs["price"], 0.0), 0.0)
    outputs["price_log_z"] = tft.scale_to_z_score(tf.math.log1p(price))
    outputs["price_01"] = tft.scale_to_0_1(price)
    return outputs
