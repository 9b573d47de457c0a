"""Two-tower stage 1, inputs: the settings, the training examples and their tf.data pipelines, and the TFX Trainer's
inputs (EmbeddingGen's content embeddings, the interaction tf.Examples; Transform's item features are read by
:mod:`modules.recommend.item_transform`).

Only training-window interactions (``ts < cutoff_ts``) are ever used; the latest ``eval_fraction`` of that window is
held out for early stopping on Recall@k. Every example's query features are point-in-time: built from that user's
*earlier* interactions only. Each example carries ``sampling_prob`` (the item's share of the training interactions,
for the logQ correction) and an event weight.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

from modules.recommend.features import (  # noqa: E402
    ItemFeatures,
    event_weight_array,
    point_in_time_features,
    tower_content,
    validate_interactions,
    validate_items,
)
from modules.settings import load_section  # noqa: E402

EMBEDDINGS_TEXT = "text.npy"
EMBEDDINGS_IMAGE = "image.npy"
EMBEDDINGS_IDS = "item_ids.json"


def tower_params(params: dict[str, Any]) -> dict[str, Any]:
    """Accept either the whole params.yaml, its ``recommend`` section, or the ``two_tower`` section; the event
    weights and price bands a caller's section lacks come from params.yaml's ``recommend`` section."""
    rec = params.get("recommend", params)
    tt = dict(rec.get("two_tower", rec))
    base = load_section("recommend")
    tt.setdefault("event_weights", dict(rec["event_weights"] if "event_weights" in rec else base.event_weights))
    tt.setdefault("n_price_bands", rec["n_price_bands"] if "n_price_bands" in rec else base.n_price_bands)
    return tt



def make_dataset(
    user_ids: np.ndarray,
    item_idx: np.ndarray,
    hist_idx: np.ndarray,
    taste: np.ndarray,
    weight: np.ndarray,
    sampling_prob: np.ndarray,
    tables: dict[str, tf.Tensor],
    batch_size: int,
    shuffle_seed: int | None,
) -> tf.data.Dataset:
    """Batches of model features; the item's content vector and Transform features are gathered from constant
    tables (catalog rows) per batch.

    Without ``shuffle_seed`` (the early-stopping slice, read every epoch) the built batches are cached."""
    ds = tf.data.Dataset.from_tensor_slices(
        {
            "user_id": user_ids.astype(str),
            "item_idx": item_idx,
            "hist_idx": hist_idx,
            "taste": taste,
            "weight": weight,
            "sampling_prob": sampling_prob,
        }
    )
    if shuffle_seed is not None:
        ds = ds.shuffle(min(len(item_idx), 200_000), seed=shuffle_seed, reshuffle_each_iteration=True)

    def to_features(b: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        mask = tf.cast(b["hist_idx"] >= 0, tf.float32)
        hist = tf.gather(tables["content"], tf.maximum(b["hist_idx"], 0)) * mask[..., None]
        hist = tf.reduce_sum(hist, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1, keepdims=True), 1.0)
        idx = b["item_idx"]
        return {
            "user_id": b["user_id"],
            "history_emb": hist,
            "taste": b["taste"],
            "item_idx": idx,
            **{k: tf.gather(t, idx) for k, t in tables.items()},  # content and Transform's item features
            "weight": b["weight"],
            "sampling_prob": b["sampling_prob"],
        }

    ds = ds.batch(batch_size).map(to_features, num_parallel_calls=tf.data.AUTOTUNE)
    return (ds if shuffle_seed is not None else ds.cache()).prefetch(tf.data.AUTOTUNE)



def train_batch_size(n_train: int, p: dict[str, Any]) -> int:
    """``batch_size`` on small data; larger batches (up to ``max_batch_size``) once an epoch would exceed
    ``min_steps_per_epoch`` steps, so a full-scale epoch is a few hundred steps rather than a thousand."""
    return min(int(p["max_batch_size"]), max(int(p["batch_size"]), n_train // int(p["min_steps_per_epoch"])))



_FEATURE_SPEC = {
    "user_id": tf.io.FixedLenFeature([], tf.string),
    "item_id": tf.io.FixedLenFeature([], tf.string),
    "event": tf.io.FixedLenFeature([], tf.string),
    "ts": tf.io.FixedLenFeature([], tf.int64),
}



def read_interaction_examples(file_patterns: list[str] | str) -> pd.DataFrame:
    """Read gzipped TFRecord files of tf.Example (user_id, item_id, event bytes; ts int64) into a DataFrame."""
    patterns = [file_patterns] if isinstance(file_patterns, str) else list(file_patterns)
    files = sorted({f for pat in patterns for f in tf.io.gfile.glob(pat)})
    cols: dict[str, list] = {k: [] for k in _FEATURE_SPEC}
    if files:
        ds = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(8192)
        for batch in ds.map(lambda s: tf.io.parse_example(s, _FEATURE_SPEC)):
            for k in ("user_id", "item_id", "event"):
                cols[k].extend(v.decode("utf-8") for v in batch[k].numpy())
            cols["ts"].extend(batch["ts"].numpy().tolist())
    return pd.DataFrame({k: pd.Series(v, dtype="int64" if k == "ts" else "object") for k, v in cols.items()})



def load_content_embeddings(embeddings_dir: str | Path, item_ids: list[str]) -> tuple[np.ndarray, str]:
    """Load EmbeddingGen's ``text.npy`` (+ optional ``image.npy``) and ``item_ids.json``, aligned to ``item_ids``.

    Returns the candidate-tower content matrix (:func:`~modules.recommend.features.tower_content`: text, then
    image when present, each block L2-normalised) and a description of its layout.
    """
    d = Path(embeddings_dir)
    stored_ids = json.loads((d / EMBEDDINGS_IDS).read_text())
    blocks, names = [np.load(d / EMBEDDINGS_TEXT)], ["text"]
    if (d / EMBEDDINGS_IMAGE).is_file():
        blocks.append(np.load(d / EMBEDDINGS_IMAGE))
        names.append("image")
    for b, n in zip(blocks, names, strict=True):
        if b.shape[0] != len(stored_ids):
            raise ValueError(f"{n}.npy has {b.shape[0]} rows but item_ids.json lists {len(stored_ids)} ids")
    row = {iid: i for i, iid in enumerate(stored_ids)}
    missing = [i for i in item_ids if i not in row]
    if missing:
        raise ValueError(f"{len(missing)} catalog items have no content embedding (e.g. {missing[0]!r})")
    order = np.array([row[i] for i in item_ids], dtype=np.int64)
    content = tower_content(*[b[order] for b in blocks])
    return content, content_description(*[b.shape[1] for b in blocks])



def content_description(text_dim: int, image_dim: int | None = None) -> str:
    """Human-readable layout of the candidate-tower content input (written into two_tower_inputs.json)."""
    parts = [f"L2-normalised text embedding ({text_dim}-d)"]
    if image_dim:
        parts.append(f"L2-normalised image embedding ({image_dim}-d)")
    return " + ".join(parts) + ", concatenated in this order"



def validated_inputs(
    train_interactions: pd.DataFrame, items: pd.DataFrame, content_emb: np.ndarray, p: dict[str, Any],
    cutoff_ts: int | None,
) -> tuple[np.ndarray, ItemFeatures, pd.DataFrame]:
    """(content float32 (n_items, C), item features, the training interactions) after the checks: ``content_emb``
    aligned with ``items``, interactions on known items, ``ts < cutoff_ts`` when a cutoff is given, and not empty."""
    items = validate_items(items)
    content_emb = np.asarray(content_emb, dtype=np.float32)
    if content_emb.ndim != 2 or content_emb.shape[0] != len(items):
        raise ValueError(f"content_emb must be (n_items={len(items)}, C), got {content_emb.shape}")
    feats = ItemFeatures.from_items(items, int(p["n_price_bands"]))
    train = validate_interactions(train_interactions, feats.index)
    if cutoff_ts is not None:
        train = train.loc[train["ts"] < cutoff_ts]
    if train.empty:
        raise ValueError("no training interactions: the two-tower model cannot be trained")
    return content_emb, feats, train


@dataclass
class TrainingData:
    """The examples of one training run: the fit and early-stopping datasets and what the metrics report."""

    train_ds: tf.data.Dataset
    eval_ds: tf.data.Dataset
    eval_targets: np.ndarray  # catalog row of each early-stopping example's item, in eval_ds order
    user_vocab: list[str]
    batch_size: int
    n_train: int
    eval_start: int
    max_train_ts: int


def _eval_split(ts: np.ndarray, p: dict[str, Any], seed: int) -> tuple[int, np.ndarray]:
    """(start ts of the early-stopping slice, is_eval mask): the latest ``eval_fraction`` of the training window (by
    time), never post-cutoff data; a seeded tenth of the examples when the window has a single timestamp."""
    eval_start = int(np.quantile(ts, 1.0 - float(p["eval_fraction"])))
    is_eval = ts >= eval_start
    if is_eval.all() or not is_eval.any():
        is_eval = np.zeros(len(ts), dtype=bool)
        is_eval[np.random.default_rng(seed).permutation(len(ts))[: max(1, len(ts) // 10)]] = True
    return eval_start, is_eval


def training_data(
    train: pd.DataFrame, feats: ItemFeatures, content_emb: np.ndarray, transformed: dict[str, np.ndarray],
    p: dict[str, Any], seed: int,
) -> TrainingData:
    """Point-in-time examples of ``train`` split into the fit and early-stopping datasets (see the module docstring);
    the fit set is shuffled with ``seed``, the early-stopping set capped at ``max_eval_examples`` (seeded).
    ``transformed``: Transform's item features in catalog order (:class:`~modules.recommend.item_transform.ItemTransform`)."""
    rows, hist_idx, taste = point_in_time_features(train, feats, int(p["history_len"]))
    eval_start, is_eval = _eval_split(rows["ts"].to_numpy(), p, seed)
    fit_mask = ~is_eval
    item_idx = rows["item_idx"].to_numpy(dtype=np.int64)
    freq = np.bincount(item_idx[fit_mask], minlength=feats.n_items).astype(np.float64)
    sampling_prob = (np.maximum(freq, 1.0) / max(fit_mask.sum(), 1))[item_idx].astype(np.float32)
    weight = event_weight_array(rows["event"], p["event_weights"])
    user_ids = rows["user_id"].to_numpy()
    tables = {"content": tf.constant(content_emb), **{k: tf.constant(v) for k, v in transformed.items()}}
    batch = train_batch_size(int(fit_mask.sum()), p)
    train_ds = make_dataset(
        user_ids[fit_mask], item_idx[fit_mask], hist_idx[fit_mask], taste[fit_mask], weight[fit_mask],
        sampling_prob[fit_mask], tables, batch, shuffle_seed=seed,
    )
    eval_rows = np.flatnonzero(is_eval)
    max_eval = int(p["max_eval_examples"])
    if len(eval_rows) > max_eval:
        eval_rows = np.sort(np.random.default_rng(seed).choice(eval_rows, max_eval, replace=False))
    eval_ds = make_dataset(
        user_ids[eval_rows], item_idx[eval_rows], hist_idx[eval_rows], taste[eval_rows], weight[eval_rows],
        sampling_prob[eval_rows], tables, int(p["eval_batch_size"]), shuffle_seed=None,
    )
    return TrainingData(train_ds, eval_ds, item_idx[eval_rows], sorted(set(user_ids[fit_mask])), batch,
                        int(fit_mask.sum()), eval_start, int(rows["ts"].max()))
