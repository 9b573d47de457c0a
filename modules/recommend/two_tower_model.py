"""Two-tower stage 2, the model: the query and candidate towers (tf-keras), the TFRS retrieval net that trains them,
and :class:`TwoTowerModel` (the trained towers plus the catalog metadata that builds their inputs).

Query tower (a user as of the end of the training window):
    user id embedding (StringLookup, 1 OOV bucket; ids are dropped to OOV while training so unseen users work)
    + history_emb: mean content embedding of the user's last ``history_len`` training interactions
    + taste: [category distribution | price-band distribution] of the user's training history
Candidate tower (an item):
    item id embedding (StringLookup, 1 OOV bucket; ids are dropped to OOV with probability ``id_dropout`` so the
    content path carries weight and a brand-new SKU still gets a meaningful embedding)
    + content (text and image embeddings, concatenated) + category, brand, price-bucket embeddings + log price.
Both towers end in an L2-normalised ``embedding_dim`` vector; the score is the cosine.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_recommenders as tfrs  # noqa: E402
import tf_keras as keras  # noqa: E402

from modules.recommend.features import ItemFeatures, UserHistories, user_query_features  # noqa: E402


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



class TwoTowerNet(tfrs.Model):
    """The two towers under a TFRS retrieval task: in-batch sampled softmax with logQ correction, accidental
    in-batch hits removed, event-weighted examples (see :mod:`modules.recommend.two_tower`)."""

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

