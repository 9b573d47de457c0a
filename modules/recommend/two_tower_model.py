"""Two-tower stage 2, the model: the query and candidate towers (tf-keras), the TFRS retrieval net that trains them,
and :class:`TwoTowerModel` (the trained towers plus the catalog metadata that builds their inputs).

Query tower (a user as of the end of the training window):
    user id embedding (StringLookup, 1 OOV bucket; ids are dropped to OOV while training so unseen users work)
    + history_emb: mean content embedding of the user's last ``history_len`` training interactions
    + taste: [category distribution | price-band distribution] of the user's training history
Candidate tower (an item), on the TFX Transform features of :mod:`modules.transform`:
    item id embedding (Transform's id vocabulary + 1 OOV bucket; ids are dropped to OOV with probability
    ``id_dropout`` so the content path carries weight and a brand-new SKU still gets a meaningful embedding)
    + content (text and image embeddings, concatenated) + category, brand (Transform's vocabularies) and price-bucket
    (Transform's quantile buckets) embeddings + Transform's z-scored log price.
Both towers end in an L2-normalised ``embedding_dim`` vector; the score is the cosine.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_recommenders as tfrs  # noqa: E402
import tf_keras as keras  # noqa: E402

from modules.recommend.features import ItemFeatures, UserHistories, user_query_features  # noqa: E402

if TYPE_CHECKING:  # tensorflow_transform is imported where a model is trained or exported, not where one is served
    from modules.recommend.item_transform import ItemTransform


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
    """Transform's item features (item_id_idx, category_idx, brand_idx, price_bucket, price_log_z) + content ->
    L2-normalised embedding. ``sizes``: embedding input size per integer feature, from the transform graph
    (:meth:`modules.recommend.item_transform.ItemTransform.sizes`: vocabulary + OOV bucket, or bucket count)."""

    def __init__(self, sizes: dict[str, int], p: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        attr = int(p["attribute_embedding_dim"])
        self.id_dropout = float(p["id_dropout"])
        self.oov_id = int(sizes["item_id_idx"]) - 1  # the id vocabulary's OOV bucket (tf.Transform appends it)
        self.item_embedding = keras.layers.Embedding(int(sizes["item_id_idx"]), int(p["id_embedding_dim"]))
        self.category_embedding = keras.layers.Embedding(int(sizes["category_idx"]), attr)
        self.brand_embedding = keras.layers.Embedding(int(sizes["brand_idx"]), attr)
        self.price_embedding = keras.layers.Embedding(int(sizes["price_bucket"]), attr)
        self.content_proj = keras.layers.Dense(int(p["hidden_dim"]), activation="relu")
        self.hidden = keras.layers.Dense(int(p["hidden_dim"]), activation="relu")
        self.out = keras.layers.Dense(int(p["embedding_dim"]))

    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        ids = inputs["item_id_idx"]
        if training and self.id_dropout > 0:
            ids = tf.where(tf.random.uniform(tf.shape(ids)) < self.id_dropout, tf.fill(tf.shape(ids), tf.cast(
                self.oov_id, ids.dtype)), ids)
        x = tf.concat(
            [
                self.item_embedding(ids),
                self.content_proj(inputs["content"]),
                self.category_embedding(inputs["category_idx"]),
                self.brand_embedding(inputs["brand_idx"]),
                self.price_embedding(inputs["price_bucket"]),
                tf.cast(inputs["price_log_z"], tf.float32)[:, None],
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
    item_transform: ItemTransform  # the transform graph and Transform's item features, catalog order
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

    def candidate_embeddings(self, batch: int = 4096) -> np.ndarray:
        """Candidate embeddings of the whole training catalog in catalog order, from Transform's item features (new
        items go through the exported ``candidate_embedding`` signature, which applies the transform graph)."""
        t = self.item_transform.features
        out = []
        for s in range(0, self.item_features.n_items, batch):
            feats = {k: tf.constant(v[s : s + batch]) for k, v in t.items()}
            feats["content"] = tf.constant(self.content[s : s + batch], tf.float32)
            out.append(self.candidate_tower(feats, training=False).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.embedding_dim), np.float32)
