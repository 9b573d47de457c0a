"""Two-tower retrieval model (TensorFlow Recommenders on tf-keras) and its TFX Trainer entry point.

Query tower (a user as of the end of the training window):
    user id embedding (StringLookup, 1 OOV bucket; ids are dropped to OOV while training so unseen users work)
    + history_emb: mean content embedding of the user's last ``history_len`` training interactions
    + taste: [category distribution | price-band distribution] of the user's training history
Candidate tower (an item):
    item id embedding (StringLookup, 1 OOV bucket; ids are dropped to OOV with probability ``id_dropout`` so the
    content path carries weight and a brand-new SKU still gets a meaningful embedding)
    + content (text and image embeddings, concatenated) + category, brand, price-bucket embeddings + log price.
Both towers end in an L2-normalised ``embedding_dim`` vector; the score is the cosine.

Training: in-batch sampled softmax (``tfrs.tasks.Retrieval``) with logQ correction
(``candidate_sampling_probability`` = the item's share of training interactions), accidental in-batch hits
removed (compared on int catalog rows, not on the id strings), event-weighted examples. Only training-window interactions (``ts < cutoff_ts``) are ever used; the
latest ``eval_fraction`` of that window is held out for early stopping on Recall@k.
Every example's query features are point-in-time: built from that user's *earlier* interactions only.

Exported SavedModel signatures (see ``two_tower_inputs.json`` written next to ``saved_model.pb``):
    query_embedding(user_id: string [None], history_emb: float32 [None, C], taste: float32 [None, T])
        -> {"embedding": float32 [None, D]}
    candidate_embedding(item_id: string [None], content: float32 [None, C], category: string [None],
                        brand: string [None], price: float32 [None]) -> {"embedding": float32 [None, D]}
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_recommenders as tfrs  # noqa: E402
import tf_keras as keras  # noqa: E402

from modules.config import param_seed  # noqa: E402
from modules.recommend.features import (  # noqa: E402
    ItemFeatures,
    UserHistories,
    event_weight_array,
    point_in_time_features,
    tower_content,
    user_query_features,
    validate_interactions,
    validate_items,
)
from modules.settings import load_section  # noqa: E402

log = logging.getLogger(__name__)

INPUTS_JSON = "two_tower_inputs.json"
EMBEDDINGS_TEXT = "text.npy"
EMBEDDINGS_IMAGE = "image.npy"
EMBEDDINGS_IDS = "item_ids.json"


def _tt_params(params: dict[str, Any]) -> dict[str, Any]:
    """Accept either the whole params.yaml, its ``recommend`` section, or the ``two_tower`` section; the event
    weights and price bands a caller's section lacks come from params.yaml's ``recommend`` section."""
    rec = params.get("recommend", params)
    tt = dict(rec.get("two_tower", rec))
    base = load_section("recommend")
    tt.setdefault("event_weights", dict(rec["event_weights"] if "event_weights" in rec else base.event_weights))
    tt.setdefault("n_price_bands", rec["n_price_bands"] if "n_price_bands" in rec else base.n_price_bands)
    return tt


class QueryTower(keras.Model):
    """user_id + history_emb + taste -> L2-normalised embedding."""

    def __init__(self, user_vocab: list[str], p: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.id_dropout = float(p["id_dropout"])
        self.user_lookup = keras.layers.StringLookup(vocabulary=list(user_vocab), num_oov_indices=1, mask_token=None)
        self.user_embedding = keras.layers.Embedding(len(user_vocab) + 1, int(p["id_embedding_dim"]))
        self.history_proj = keras.layers.Dense(int(p["hidden_dim"]), activation="relu")
        self.taste_proj = keras.layers.Dense(int(p["attribute_embedding_dim"]) * 2, activation="relu")
        self.hidden = keras.layers.Dense(int(p["hidden_dim"]), activation="relu")
        self.out = keras.layers.Dense(int(p["embedding_dim"]))

    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        ids = self.user_lookup(inputs["user_id"])
        if training and self.id_dropout > 0:
            ids = tf.where(tf.random.uniform(tf.shape(ids)) < self.id_dropout, tf.zeros_like(ids), ids)
        x = tf.concat(
            [self.user_embedding(ids), self.history_proj(inputs["history_emb"]), self.taste_proj(inputs["taste"])], axis=-1
        )
        return tf.math.l2_normalize(self.out(self.hidden(x)), axis=-1)


class CandidateTower(keras.Model):
    """item_id + content + category + brand + price -> L2-normalised embedding."""

    def __init__(
        self,
        item_vocab: list[str],
        category_vocab: list[str],
        brand_vocab: list[str],
        price_boundaries: list[float],
        p: dict[str, Any],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        attr = int(p["attribute_embedding_dim"])
        self.id_dropout = float(p["id_dropout"])
        self.item_lookup = keras.layers.StringLookup(vocabulary=list(item_vocab), num_oov_indices=1, mask_token=None)
        self.item_embedding = keras.layers.Embedding(len(item_vocab) + 1, int(p["id_embedding_dim"]))
        self.category_lookup = keras.layers.StringLookup(vocabulary=list(category_vocab), num_oov_indices=1, mask_token=None)
        self.category_embedding = keras.layers.Embedding(len(category_vocab) + 1, attr)
        self.brand_lookup = keras.layers.StringLookup(vocabulary=list(brand_vocab), num_oov_indices=1, mask_token=None)
        self.brand_embedding = keras.layers.Embedding(len(brand_vocab) + 1, attr)
        self.price_bucket = keras.layers.Discretization(bin_boundaries=[float(b) for b in price_boundaries])
        self.price_embedding = keras.layers.Embedding(len(price_boundaries) + 1, attr)
        self.content_proj = keras.layers.Dense(int(p["hidden_dim"]), activation="relu")
        self.hidden = keras.layers.Dense(int(p["hidden_dim"]), activation="relu")
        self.out = keras.layers.Dense(int(p["embedding_dim"]))

    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        ids = self.item_lookup(inputs["item_id"])
        if training and self.id_dropout > 0:
            ids = tf.where(tf.random.uniform(tf.shape(ids)) < self.id_dropout, tf.zeros_like(ids), ids)
        price = tf.cast(inputs["price"], tf.float32)
        x = tf.concat(
            [
                self.item_embedding(ids),
                self.content_proj(inputs["content"]),
                self.category_embedding(self.category_lookup(inputs["category"])),
                self.brand_embedding(self.brand_lookup(inputs["brand"])),
                self.price_embedding(self.price_bucket(price)),
                tf.math.log1p(tf.maximum(price, 0.0))[:, None] / 10.0,
            ],
            axis=-1,
        )
        return tf.math.l2_normalize(self.out(self.hidden(x)), axis=-1)


class _TwoTowerNet(tfrs.Model):
    def __init__(self, query_tower: QueryTower, candidate_tower: CandidateTower, temperature: float, logq: bool) -> None:
        super().__init__()
        self.query_tower = query_tower
        self.candidate_tower = candidate_tower
        self.logq = logq
        self.task = tfrs.tasks.Retrieval(temperature=temperature, remove_accidental_hits=True)

    def compute_loss(self, features: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        q = self.query_tower(features, training=training)
        c = self.candidate_tower(features, training=training)
        return self.task(
            q,
            c,
            sample_weight=features["weight"],
            candidate_sampling_probability=features["sampling_prob"] if self.logq else None,
            candidate_ids=features["item_idx"],  # int catalog rows: the same mask as the (unique) string ids, cheaper
            compute_metrics=False,
            compute_batch_metrics=False,
        )


@dataclass
class TwoTowerModel:
    """A trained two-tower model plus the catalog metadata needed to build its inputs."""

    query_tower: QueryTower
    candidate_tower: CandidateTower
    item_features: ItemFeatures
    content: np.ndarray  # (n_items, C) content input of the candidate tower, catalog order
    user_vocab: list[str]
    params: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def content_dim(self) -> int:
        return int(self.content.shape[1])

    @property
    def taste_dim(self) -> int:
        return self.item_features.taste_dim

    @property
    def embedding_dim(self) -> int:
        return int(self.params["embedding_dim"])

    def query_embeddings(self, user_ids: list[str], history_emb: np.ndarray, taste: np.ndarray, batch: int = 4096) -> np.ndarray:
        out = []
        for s in range(0, len(user_ids), batch):
            feats = {
                "user_id": tf.constant(np.asarray(user_ids[s : s + batch], dtype=object).astype(str)),
                "history_emb": tf.constant(history_emb[s : s + batch], tf.float32),
                "taste": tf.constant(taste[s : s + batch], tf.float32),
            }
            out.append(self.query_tower(feats, training=False).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.embedding_dim), np.float32)

    def user_embeddings(self, user_ids: list[str], histories: UserHistories) -> np.ndarray:
        """Query embeddings of users as of the end of their training history."""
        hist, taste = user_query_features(
            user_ids, histories, self.content, self.item_features, int(self.params["history_len"])
        )
        return self.query_embeddings(user_ids, hist, taste)

    def candidate_embeddings(
        self,
        item_ids: list[str] | None = None,
        content: np.ndarray | None = None,
        category: list[str] | None = None,
        brand: list[str] | None = None,
        price: np.ndarray | None = None,
        batch: int = 4096,
    ) -> np.ndarray:
        """Candidate embeddings; with no arguments, of the whole training catalog in catalog order."""
        if item_ids is None:
            f = self.item_features
            item_ids, content, category, brand, price = f.item_ids, self.content, list(f.category), list(f.brand), f.price
        out = []
        for s in range(0, len(item_ids), batch):
            feats = {
                "item_id": tf.constant(np.asarray(item_ids[s : s + batch], dtype=str)),
                "content": tf.constant(np.asarray(content[s : s + batch], np.float32)),
                "category": tf.constant(np.asarray(category[s : s + batch], dtype=str)),
                "brand": tf.constant(np.asarray(brand[s : s + batch], dtype=str)),
                "price": tf.constant(np.asarray(price[s : s + batch], np.float32)),
            }
            out.append(self.candidate_tower(feats, training=False).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.embedding_dim), np.float32)


def _make_dataset(
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
    """Batches of model features; content vectors are gathered from constant tables per batch.

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
            "item_id": tf.gather(tables["item_id"], idx),
            "item_idx": idx,
            "content": tf.gather(tables["content"], idx),
            "category": tf.gather(tables["category"], idx),
            "brand": tf.gather(tables["brand"], idx),
            "price": tf.gather(tables["price"], idx),
            "weight": b["weight"],
            "sampling_prob": b["sampling_prob"],
        }

    ds = ds.batch(batch_size).map(to_features, num_parallel_calls=tf.data.AUTOTUNE)
    return (ds if shuffle_seed is not None else ds.cache()).prefetch(tf.data.AUTOTUNE)


def train_batch_size(n_train: int, p: dict[str, Any]) -> int:
    """``batch_size`` on small data; larger batches (up to ``max_batch_size``) once an epoch would exceed
    ``min_steps_per_epoch`` steps, so a full-scale epoch is a few hundred steps rather than a thousand."""
    return min(int(p["max_batch_size"]), max(int(p["batch_size"]), n_train // int(p["min_steps_per_epoch"])))


def _recall_at_k(model: _TwoTowerNet, eval_ds: tf.data.Dataset, cand_emb: tf.Tensor, targets: np.ndarray, k: int) -> float:
    """Share of held-out (user, item) examples whose item is in the query's top k over the whole catalog."""
    hits, start = 0, 0
    for b in eval_ds:
        q = model.query_tower(b, training=False)
        top = tf.math.top_k(tf.matmul(q, cand_emb, transpose_b=True), k=min(k, int(cand_emb.shape[0]))).indices.numpy()
        t = targets[start : start + len(top)]
        hits += int((top == t[:, None]).any(axis=1).sum())
        start += len(top)
    return hits / max(start, 1)


def train_two_tower(
    train_interactions: pd.DataFrame,
    items: pd.DataFrame,
    content_emb: np.ndarray,
    params: dict[str, Any],
    seed: int = 42,
    cutoff_ts: int | None = None,
) -> TwoTowerModel:
    """Train the two-tower model on training-window interactions.

    ``content_emb`` is (n_items, C) aligned with ``items.item_id`` (e.g. text and image embeddings
    concatenated). ``params`` is params.yaml, its ``recommend`` section or the ``two_tower`` section.
    When ``cutoff_ts`` is given, rows with ``ts >= cutoff_ts`` are dropped (defence in depth: callers
    should already pass the training window only).
    """
    p = _tt_params(params)
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

    keras.utils.set_random_seed(seed)
    history_len = int(p["history_len"])
    rows, hist_idx, taste = point_in_time_features(train, feats, history_len)

    # Early-stopping slice: the latest eval_fraction of the training window (by time), never post-cutoff data.
    eval_start = int(np.quantile(rows["ts"].to_numpy(), 1.0 - float(p["eval_fraction"])))
    is_eval = (rows["ts"] >= eval_start).to_numpy()
    if is_eval.all() or not is_eval.any():
        is_eval = np.zeros(len(rows), dtype=bool)
        is_eval[np.random.default_rng(seed).permutation(len(rows))[: max(1, len(rows) // 10)]] = True
    fit_mask = ~is_eval

    item_idx = rows["item_idx"].to_numpy(dtype=np.int64)
    freq = np.bincount(item_idx[fit_mask], minlength=feats.n_items).astype(np.float64)
    sampling_prob = (np.maximum(freq, 1.0) / max(fit_mask.sum(), 1))[item_idx].astype(np.float32)
    weight = event_weight_array(rows["event"], p["event_weights"])
    user_ids = rows["user_id"].to_numpy()
    user_vocab = sorted(set(user_ids[fit_mask]))

    tables = {
        "content": tf.constant(content_emb),
        "item_id": tf.constant(np.asarray(feats.item_ids, dtype=str)),
        "category": tf.constant(feats.category.astype(str)),
        "brand": tf.constant(feats.brand.astype(str)),
        "price": tf.constant(feats.price),
    }
    batch = train_batch_size(int(fit_mask.sum()), p)
    train_ds = _make_dataset(
        user_ids[fit_mask], item_idx[fit_mask], hist_idx[fit_mask], taste[fit_mask], weight[fit_mask],
        sampling_prob[fit_mask], tables, batch, shuffle_seed=seed,
    )
    eval_rows = np.flatnonzero(is_eval)
    max_eval = int(p["max_eval_examples"])
    if len(eval_rows) > max_eval:
        eval_rows = np.sort(np.random.default_rng(seed).choice(eval_rows, max_eval, replace=False))
    eval_ds = _make_dataset(
        user_ids[eval_rows], item_idx[eval_rows], hist_idx[eval_rows], taste[eval_rows], weight[eval_rows],
        sampling_prob[eval_rows], tables, int(p["eval_batch_size"]), shuffle_seed=None,
    )

    query_tower = QueryTower(user_vocab, p)
    candidate_tower = CandidateTower(feats.item_ids, feats.category_vocab, feats.brand_vocab, list(feats.price_boundaries), p)
    net = _TwoTowerNet(query_tower, candidate_tower, float(p["temperature"]), bool(p["logq_correction"]))
    net.compile(optimizer=keras.optimizers.Adam(learning_rate=float(p["learning_rate"])))
    model = TwoTowerModel(query_tower, candidate_tower, feats, content_emb, user_vocab, p)

    k = int(p["eval_k"])
    best_recall, best_epoch, best_weights, waited = -1.0, 0, None, 0
    history: list[dict[str, float]] = []
    for epoch in range(1, int(p["epochs"]) + 1):
        fit = net.fit(train_ds, epochs=1, verbose=0)
        cand = tf.constant(model.candidate_embeddings())
        recall = _recall_at_k(net, eval_ds, cand, item_idx[eval_rows], k)
        history.append({"epoch": epoch, "loss": float(fit.history["loss"][-1]), f"eval_recall@{k}": recall})
        log.info("two-tower epoch %d loss %.4f eval recall@%d %.4f", epoch, history[-1]["loss"], k, recall)
        if recall > best_recall:
            best_recall, best_epoch, best_weights, waited = recall, epoch, net.get_weights(), 0
        else:
            waited += 1
            if waited >= int(p["early_stopping_patience"]):
                break
    if best_weights is not None:
        net.set_weights(best_weights)
    model.metrics = {
        f"eval_recall@{k}": best_recall,
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "n_train_examples": int(fit_mask.sum()),
        "batch_size": batch,
        "n_eval_examples": int(len(eval_rows)),
        "eval_window_start_ts": eval_start,
        "max_train_ts": int(rows["ts"].max()),
        "history": history,
    }
    return model


class _ExportModule(tf.Module):
    def __init__(self, model: TwoTowerModel) -> None:
        super().__init__()
        self.query_tower = model.query_tower
        self.candidate_tower = model.candidate_tower
        c, t = model.content_dim, model.taste_dim

        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.string, name="user_id"),
                tf.TensorSpec([None, c], tf.float32, name="history_emb"),
                tf.TensorSpec([None, t], tf.float32, name="taste"),
            ]
        )
        def query_embedding(user_id: tf.Tensor, history_emb: tf.Tensor, taste: tf.Tensor) -> dict[str, tf.Tensor]:
            feats = {"user_id": user_id, "history_emb": history_emb, "taste": taste}
            return {"embedding": self.query_tower(feats, training=False)}

        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.string, name="item_id"),
                tf.TensorSpec([None, c], tf.float32, name="content"),
                tf.TensorSpec([None], tf.string, name="category"),
                tf.TensorSpec([None], tf.string, name="brand"),
                tf.TensorSpec([None], tf.float32, name="price"),
            ]
        )
        def candidate_embedding(
            item_id: tf.Tensor, content: tf.Tensor, category: tf.Tensor, brand: tf.Tensor, price: tf.Tensor
        ) -> dict[str, tf.Tensor]:
            feats = {"item_id": item_id, "content": content, "category": category, "brand": brand, "price": price}
            return {"embedding": self.candidate_tower(feats, training=False)}

        self.query_embedding = query_embedding
        self.candidate_embedding = candidate_embedding


def export_two_tower(model: TwoTowerModel, export_dir: str | Path, content_layout: str = "") -> Path:
    """Write the SavedModel (signatures ``query_embedding`` and ``candidate_embedding``) into ``export_dir``.

    ``export_dir`` is used as is (TF Serving layout means the caller passes ``.../two_tower/<version>``).
    ``two_tower_inputs.json`` is written inside it, describing every input and how to build it.
    """
    export_dir = Path(export_dir)
    export_dir.parent.mkdir(parents=True, exist_ok=True)
    module = _ExportModule(model)
    tf.saved_model.save(
        module,
        str(export_dir),
        signatures={"query_embedding": module.query_embedding, "candidate_embedding": module.candidate_embedding},
    )
    f = model.item_features
    spec = {
        "embedding_dim": model.embedding_dim,
        "normalised": "L2",
        "score": "dot product of query and candidate embeddings (cosine)",
        "signatures": {
            "query_embedding": {
                "user_id": "string [None]; unknown ids map to the OOV bucket",
                "history_emb": f"float32 [None, {model.content_dim}]; mean content vector of the user's last "
                f"{model.params['history_len']} interactions (zeros when none)",
                "taste": f"float32 [None, {model.taste_dim}]; category distribution over category_vocab, then "
                f"price-band distribution over {f.n_price_bands} bands (band = searchsorted(price_boundaries, price, 'right'))",
            },
            "candidate_embedding": {
                "item_id": "string [None]; new SKUs map to the OOV bucket",
                "content": f"float32 [None, {model.content_dim}]; {content_layout or 'item content vector'}",
                "category": "string [None]",
                "brand": "string [None]",
                "price": "float32 [None]",
            },
        },
        "content_dim": model.content_dim,
        "content": content_layout,
        "taste_dim": model.taste_dim,
        "history_len": int(model.params["history_len"]),
        **f.to_json(),
        "metrics": {k: v for k, v in model.metrics.items() if k != "history"},
    }
    (export_dir / INPUTS_JSON).write_text(json.dumps(spec, indent=2))
    return export_dir


class SavedTwoTower:
    """An exported two-tower SavedModel, with helpers that build its inputs (used by the hybrid recommender)."""

    def __init__(self, export_dir: str | Path) -> None:
        self.export_dir = Path(export_dir)
        self.spec = json.loads((self.export_dir / INPUTS_JSON).read_text())
        self._loaded = tf.saved_model.load(str(self.export_dir))
        self._query = self._loaded.signatures["query_embedding"]
        self._candidate = self._loaded.signatures["candidate_embedding"]

    def query_embeddings(self, user_ids: list[str], history_emb: np.ndarray, taste: np.ndarray) -> np.ndarray:
        out = self._query(
            user_id=tf.constant(np.asarray(user_ids, dtype=str)),
            history_emb=tf.constant(history_emb, tf.float32),
            taste=tf.constant(taste, tf.float32),
        )
        return out["embedding"].numpy()

    def candidate_embeddings(
        self, item_ids: list[str], content: np.ndarray, category: list[str], brand: list[str], price: np.ndarray,
        batch: int = 4096,
    ) -> np.ndarray:
        out = []
        for s in range(0, len(item_ids), batch):
            out.append(
                self._candidate(
                    item_id=tf.constant(np.asarray(item_ids[s : s + batch], dtype=str)),
                    content=tf.constant(np.asarray(content[s : s + batch], np.float32)),
                    category=tf.constant(np.asarray(category[s : s + batch], dtype=str)),
                    brand=tf.constant(np.asarray(brand[s : s + batch], dtype=str)),
                    price=tf.constant(np.asarray(price[s : s + batch], np.float32)),
                )["embedding"].numpy()
            )
        return np.concatenate(out) if out else np.zeros((0, int(self.spec["embedding_dim"])), np.float32)


# ----------------------------------------------------------------------------------------------------------------------
# TFX Trainer entry point
# ----------------------------------------------------------------------------------------------------------------------
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


def run_fn(fn_args: Any) -> None:
    """TFX Trainer ``run_fn``.

    Reads ``fn_args.train_files`` and ``fn_args.eval_files`` (gzipped TFRecord tf.Examples: user_id, item_id,
    event bytes; ts int64), keeps only ``ts < cutoff_ts`` from both (the early-stopping slice is carved from the
    end of that training window, so the pipeline's own split never lets held-out data in), trains, exports the
    SavedModel to ``fn_args.serving_model_dir`` and writes ``metrics.json`` to ``fn_args.model_run_dir``.

    ``fn_args.custom_config``:
        items_csv: path to items.csv
        embeddings_dir: directory with ``text.npy`` (n, 384), optional ``image.npy`` (n, 384), and
            ``item_ids.json`` (list of the n item ids, in row order)
        cutoff_ts: int, the temporal split
        params: params.yaml dict (or its ``recommend`` section)
        seed: optional int (default: params["seed"], see modules.config.param_seed)
    """
    cfg = dict(fn_args.custom_config or {})
    for key in ("items_csv", "embeddings_dir", "cutoff_ts"):
        if key not in cfg:
            raise ValueError(f"custom_config is missing {key!r}")
    params = cfg.get("params") or {}
    seed = int(cfg.get("seed", param_seed(params)))
    cutoff_ts = int(cfg["cutoff_ts"])
    items = pd.read_csv(cfg["items_csv"], dtype={"item_id": str, "category": str, "brand": str}, keep_default_na=False)
    interactions = pd.concat(
        [read_interaction_examples(fn_args.train_files), read_interaction_examples(fn_args.eval_files)], ignore_index=True
    ).drop_duplicates()
    train = interactions.loc[interactions["ts"] < cutoff_ts]
    content, desc = load_content_embeddings(cfg["embeddings_dir"], items["item_id"].astype(str).tolist())
    model = train_two_tower(train, items, content, params, seed=seed, cutoff_ts=cutoff_ts)
    export_two_tower(model, fn_args.serving_model_dir, content_layout=desc)
    run_dir = Path(fn_args.model_run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.json").write_text(json.dumps({**model.metrics, "cutoff_ts": cutoff_ts}, indent=2))
