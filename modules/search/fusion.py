"""Fusion of text and image item embeddings into one vector space searched by the ``fusion`` retriever.

Methods (``fusion.method`` in params.yaml):
- ``concat`` (early fusion): L2-normalised concatenation ``[t; i]``. The query side is ``[q; q]`` when the image
  space is the text space (the LiT tower is aligned to SBERT), ``[q; q_img]`` when an image-space query vector is
  given (CLIP text encoder), else ``[q; 0]``.
- ``late``: score averaging ``(1 - w) cos(q, t) + w cos(q_img, i)`` realised as the weighted concatenation
  ``[sqrt(1-w) t; sqrt(w) i]`` so it runs on one inner-product index (w = ``fusion.late_image_weight``).
- ``learned``: a small tf-keras MLP maps ``[t; i]`` into the SBERT query space (residual on ``t``, so it starts at
  the text embedding), trained with in-batch softmax on (query embedding, relevant item) pairs from TRAIN-split
  queries only, or self-supervised title-word queries when no judged queries exist (``build_train_pairs``).
  A seeded share of the TRAIN text queries (``fusion.learned.ranker_holdout``) is kept out of those pairs
  (``fusion_pair_queries``); the re-ranker trains on them (``ranker_queries``), so its ``dense_fused``/``rrf``
  features are the fusion's scores on queries it never fitted, as on EVAL queries and in serving.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modules.config import param_seed
from modules.settings import LearnedFusionSettings, load_section

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

METHODS = ("concat", "late", "learned")


def _l2(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def _mlp(in_dim: int, hidden_dim: int, out_dim: int, seed: int):
    import tf_keras as keras

    init = keras.initializers.GlorotUniform(seed=seed)
    inp = keras.Input(shape=(in_dim,), name="text_image")
    h = keras.layers.Dense(hidden_dim, activation="relu", kernel_initializer=init, name="hidden")(inp)
    delta = keras.layers.Dense(out_dim, kernel_initializer="zeros", name="delta")(h)
    text_part = keras.layers.Lambda(lambda x: x[:, :out_dim], name="text_part")(inp)
    out = keras.layers.Add(name="residual")([text_part, delta])
    out = keras.layers.UnitNormalization(axis=-1, name="l2")(out)
    return keras.Model(inp, out, name="learned_fusion")


class Fusion:
    """A fitted fusion: item-side ``fuse_items`` and query-side ``query_vector`` in the same space."""

    def __init__(self, method: str, text_dim: int, image_dim: int, late_image_weight: float, hidden_dim: int,
                 seed: int) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown fusion method {method!r}; choose from {METHODS}")
        if not 0.0 <= late_image_weight <= 1.0:
            raise ValueError("fusion late_image_weight must be in [0, 1]")
        self.method, self.text_dim, self.image_dim = method, int(text_dim), int(image_dim)
        self.late_image_weight, self.hidden_dim, self.seed = float(late_image_weight), int(hidden_dim), seed
        self.model = None
        self.history: list[float] = []
        self.n_train_pairs = 0  # (query, item) pairs the learned projection trained on

    # -- construction ---------------------------------------------------------------------------------------------
    @classmethod
    def build(cls, method: str, text_emb: np.ndarray, image_emb: np.ndarray, params: Mapping[str, Any],
              seed: int | None = None, train_pairs: tuple[np.ndarray, np.ndarray] | None = None) -> Fusion:
        """Fit a fusion. ``params`` is the ``fusion:`` section (what it lacks comes from params.yaml's).
        ``train_pairs`` = (query_emb (m, d_text), item_rows (m,)) is required for ``learned`` (see
        ``build_train_pairs``)."""
        cfg = load_section("fusion", params)
        seed = param_seed() if seed is None else seed        # params is the fusion section: no seed in it
        f = cls(method, text_emb.shape[1], image_emb.shape[1], late_image_weight=cfg.late_image_weight,
                hidden_dim=cfg.learned.hidden_dim, seed=seed)
        if method == "learned":
            if train_pairs is None:
                raise ValueError("learned fusion needs train_pairs (query_emb, item_rows); use build_train_pairs()")
            f._train(text_emb, image_emb, train_pairs, cfg.learned, seed)
        return f

    def _train(self, text_emb: np.ndarray, image_emb: np.ndarray, pairs: tuple[np.ndarray, np.ndarray],
               cfg: LearnedFusionSettings, seed: int) -> None:
        import tensorflow as tf
        import tf_keras as keras

        q_emb, rows = _l2(pairs[0]), np.asarray(pairs[1], dtype=np.int64)
        if len(q_emb) != len(rows) or len(rows) == 0:
            raise ValueError("train_pairs must be two aligned, non-empty arrays")
        if q_emb.shape[1] != self.text_dim:
            raise ValueError(f"query embeddings have dim {q_emb.shape[1]}, expected {self.text_dim}")
        tf.random.set_seed(seed)
        rng = np.random.default_rng(seed)
        max_pairs = cfg.max_pairs
        if max_pairs and len(rows) > max_pairs:
            # a seeded subsample bounds the cost at full scale (433K pairs from 1,663 judged texts at 100K items)
            keep = np.sort(rng.choice(len(rows), size=int(max_pairs), replace=False))
            q_emb, rows = q_emb[keep], rows[keep]
        self.n_train_pairs = len(rows)
        x_items = np.concatenate([_l2(text_emb), _l2(image_emb)], axis=1).astype(np.float32)
        self.model = _mlp(x_items.shape[1], self.hidden_dim, self.text_dim, seed)
        opt = keras.optimizers.Adam(cfg.learning_rate)
        temperature = cfg.temperature
        batch = cfg.batch_size
        model = self.model

        @tf.function(reduce_retracing=True)
        def step(q: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                logits = tf.matmul(q, model(x, training=True), transpose_b=True) / temperature
                labels = tf.range(tf.shape(q)[0])
                loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return loss

        for _ in range(cfg.epochs):
            order = rng.permutation(len(rows))
            losses = []
            for s in range(0, len(order), batch):
                idx = order[s:s + batch]
                if len(idx) < 2:
                    continue
                losses.append(float(step(tf.constant(q_emb[idx]), tf.constant(x_items[rows[idx]]))))
            self.history.append(float(np.mean(losses)) if losses else float("nan"))

    # -- use ------------------------------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self.text_dim if self.method == "learned" else self.text_dim + self.image_dim

    def fuse_items(self, text_emb: np.ndarray, image_emb: np.ndarray) -> np.ndarray:
        """Fused, L2-normalised item vectors (n, dim)."""
        t, i = _l2(np.atleast_2d(text_emb)), _l2(np.atleast_2d(image_emb))
        if self.method == "concat":
            return _l2(np.concatenate([t, i], axis=1))
        if self.method == "late":
            w = self.late_image_weight
            return _l2(np.concatenate([np.sqrt(1 - w) * t, np.sqrt(w) * i], axis=1))
        assert self.model is not None, "learned fusion is not trained"
        x = np.concatenate([t, i], axis=1).astype(np.float32)
        return _l2(self.model.predict(x, batch_size=1024, verbose=0))

    def query_vector(self, text_vec: np.ndarray, image_vec: np.ndarray | None = None) -> np.ndarray:
        """Query-side vector. ``image_vec`` is a query vector in the image space (a photo, or CLIP text)."""
        t = _l2(np.asarray(text_vec).ravel())
        if image_vec is None and self.image_dim == self.text_dim:
            img = t  # the image space is the text space (LiT tower): the text query speaks for both halves
        elif image_vec is None:
            img = np.zeros(self.image_dim, dtype=np.float32)
        else:
            img = _l2(np.asarray(image_vec).ravel())
        if self.method == "concat":
            return _l2(np.concatenate([t, img]))
        if self.method == "late":
            w = self.late_image_weight
            return _l2(np.concatenate([np.sqrt(1 - w) * t, np.sqrt(w) * img]))
        if image_vec is not None and img.shape[0] == self.text_dim:
            return _l2(t + img)
        return t

    fuse_query = query_vector  # name used in docs/architecture.md

    # -- persistence ----------------------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        cfg = {"method": self.method, "text_dim": self.text_dim, "image_dim": self.image_dim,
               "late_image_weight": self.late_image_weight, "hidden_dim": self.hidden_dim, "seed": self.seed,
               "history": self.history}
        (d / "fusion.json").write_text(json.dumps(cfg, indent=2))
        if self.model is not None:
            np.savez(d / "weights.npz", *self.model.get_weights())

    @classmethod
    def load(cls, directory: str | Path) -> Fusion:
        d = Path(directory)
        cfg = json.loads((d / "fusion.json").read_text())
        f = cls(cfg["method"], cfg["text_dim"], cfg["image_dim"], cfg["late_image_weight"], cfg["hidden_dim"],
                cfg["seed"])
        f.history = cfg.get("history", [])
        if f.method == "learned":
            with np.load(d / "weights.npz") as z:
                weights = [z[f"arr_{k}"] for k in range(len(z.files))]
            f.model = _mlp(f.text_dim + f.image_dim, f.hidden_dim, f.text_dim, f.seed)
            f.model.set_weights(weights)
        return f


def held_out_of_fusion(qid: str, holdout: float, seed: int) -> bool:
    """Whether the query ``qid`` is in the seeded ``holdout`` share kept out of the learned fusion's training pairs.
    A hash of (seed, qid), so the answer does not depend on the order or number of the other queries."""
    digest = hashlib.blake2b(f"{seed}:{qid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64 < float(holdout)


def fusion_pair_queries(queries: Sequence[Mapping[str, Any]], cfg: LearnedFusionSettings, seed: int) -> list[dict]:
    """The TRAIN text queries whose (text, relevant item) pairs train the ``learned`` fusion: all but the seeded
    ``ranker_holdout`` share, which the re-ranker trains on instead (``ranker_queries``)."""
    return [dict(q) for q in queries if q.get("split") == "train" and str(q.get("text") or "").strip()
            and not held_out_of_fusion(str(q.get("qid")), cfg.ranker_holdout, seed)]


def ranker_queries(queries: Sequence[Mapping[str, Any]], fusion_params: Mapping[str, Any] | None,
                   seed: int) -> list[dict]:
    """The TRAIN queries the re-ranker may learn from: with ``learned`` fusion, those that did not train it (its
    scores on the others are memorised, higher than on any EVAL or served query); with a fixed fusion, all."""
    cfg = load_section("fusion", fusion_params)
    if cfg.method != "learned":
        return [dict(q) for q in queries]
    fitted = {str(q.get("qid")) for q in fusion_pair_queries(queries, cfg.learned, seed)}
    return [dict(q) for q in queries if str(q.get("qid")) not in fitted]


def build_train_pairs(items: pd.DataFrame, text_encoder: Any, queries: Sequence[Mapping[str, Any]] | None = None,
                      seed: int | None = None, max_words: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(query_emb, item_rows) for the learned fusion.

    Uses the TRAIN-split text queries (``split == "train"``, non-empty text, one pair per relevant item with
    grade >= 2); when there are none, self-supervised queries of 1..``max_words`` random words of each item's title.
    ``items`` is the item DataFrame (row order = embedding order).
    """
    row_of = {str(iid): r for r, iid in enumerate(items["item_id"].astype(str))}
    texts: list[str] = []
    rows: list[int] = []
    for q in queries or []:
        if q.get("split") != "train" or not str(q.get("text", "")).strip():
            continue
        for iid, grade in (q.get("relevance") or {}).items():
            if int(grade) >= 2 and str(iid) in row_of:
                texts.append(str(q["text"]))
                rows.append(row_of[str(iid)])
    if not texts:
        rng = np.random.default_rng(param_seed() if seed is None else seed)
        for r, title in enumerate(items["title"].fillna("").astype(str)):
            words = title.split()
            if not words:
                continue
            n = int(rng.integers(1, min(max_words, len(words)) + 1))
            pick = sorted(rng.choice(len(words), size=n, replace=False))
            texts.append(" ".join(words[j] for j in pick))
            rows.append(r)
    if not texts:
        raise ValueError("no training pairs: no train-split queries and no item titles")
    # A judged query is paired with every relevant item (hundreds at 100K items: 433K pairs from 1,663 distinct
    # texts at full scale), so encode each distinct text once and repeat its vector.
    distinct = list(dict.fromkeys(texts))
    position = {text: i for i, text in enumerate(distinct)}
    vectors = np.asarray(text_encoder.encode(distinct), dtype=np.float32)
    return vectors[[position[t] for t in texts]], np.asarray(rows, dtype=np.int64)
