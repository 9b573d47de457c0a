"""Content-based recommender: cosine between a user's history centroid and fused item content vectors, mixed with
the user's attribute taste (``modules.recommend.taste``: lifts of the catalog's own categorical columns, weights fitted
on the training window) when one was built.

Fused item vector = concatenation of L2-normalised blocks, each scaled by sqrt(block weight), then
L2-normalised: text embedding, image embedding, colour/texture features, and attributes (one-hot category
+ one-hot price band). The dot product of two fused vectors is therefore the weight-averaged cosine of the
blocks. Works for every item, including new SKUs with no interactions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modules.config import param_seed
from modules.recommend.features import ItemFeatures, UserHistories, validate_interactions
from modules.recommend.taste import AttributeTaste


def _l2(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


def fuse_item_vectors(
    item_features: ItemFeatures,
    text_emb: np.ndarray | None,
    image_emb: np.ndarray | None,
    color_feats: np.ndarray | None,
    params: dict[str, Any],
) -> np.ndarray:
    """(n_items, d) L2-normalised fused content vectors (blocks that are None or weighted 0 are skipped)."""
    rec = params.get("recommend", params)
    w = rec["content"]
    blocks = []
    for arr, key in ((text_emb, "text_weight"), (image_emb, "image_weight"), (color_feats, "color_weight")):
        if arr is None or float(w[key]) <= 0:
            continue
        arr = np.asarray(arr, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[0] != item_features.n_items:
            raise ValueError(f"{key.removesuffix('_weight')} features must be (n_items={item_features.n_items}, d), got {arr.shape}")
        blocks.append(np.sqrt(float(w[key])) * _l2(arr))
    if float(w["attribute_weight"]) > 0:
        blocks.append(np.sqrt(float(w["attribute_weight"])) * _l2(item_features.taste_onehots()))
    if not blocks:
        raise ValueError("no content block has a positive weight")
    return _l2(np.concatenate(blocks, axis=1))


@dataclass
class ContentRecommender:
    item_ids: list[str]
    vectors: np.ndarray  # (n_items, d) fused, L2-normalised
    histories: UserHistories
    history_len: int
    exclude_purchased: bool
    taste: AttributeTaste | None = None  # None: cosine only (bundles saved before the taste existed)

    def __post_init__(self) -> None:
        self.item_index = {iid: i for i, iid in enumerate(self.item_ids)}
        self.taste_weights: dict[str, float] = {}

    @classmethod
    def build(
        cls,
        items: pd.DataFrame,
        train_interactions: pd.DataFrame,
        text_emb: np.ndarray | None,
        image_emb: np.ndarray | None,
        color_feats: np.ndarray | None,
        params: dict[str, Any],
        photo_colours: list[str] | None = None,
        seed: int | None = None,
    ) -> ContentRecommender:
        """``photo_colours``: the colour namer's name for each item's photo (an extra taste column when given);
        ``seed`` (None: params.yaml's) draws the users and negatives the taste weights are fitted on."""
        rec = params.get("recommend", params)
        feats = ItemFeatures.from_items(items, int(rec["n_price_bands"]))
        vectors = fuse_item_vectors(feats, text_emb, image_emb, color_feats, params)
        train = validate_interactions(train_interactions, feats.index)
        histories = UserHistories.from_interactions(train, feats.index)
        out = cls(feats.item_ids, vectors, histories, int(rec["content"]["history_len"]), bool(rec["exclude_purchased"]))
        taste = AttributeTaste.from_items(items, photo_colours, params)
        out.taste_weights = taste.fit(histories, out.score_items, params, param_seed(params) if seed is None else seed)
        out.taste = taste if out.taste_weights else None   # no history to fit on: cosine only
        return out

    def centroid(self, item_idx: np.ndarray) -> np.ndarray | None:
        """Normalised mean vector of the given items (None for an empty list)."""
        if len(item_idx) == 0:
            return None
        c = self.vectors[np.asarray(item_idx, dtype=np.int64)].mean(axis=0)
        n = float(np.linalg.norm(c))
        return None if n == 0 else c / n

    def score_items(self, item_idx: np.ndarray) -> np.ndarray | None:
        """Cosine of every catalog item with the centroid of ``item_idx`` (None for an empty list)."""
        c = self.centroid(item_idx)
        return None if c is None else self.vectors @ c

    def score_history(self, item_idx: np.ndarray) -> np.ndarray | None:
        """A user's history scored over every item: the cosine mixed with the attribute taste (None: empty)."""
        cos = self.score_items(item_idx)
        return cos if cos is None or self.taste is None else self.taste.score(item_idx, cos)

    def score_all(self, user_id: str) -> np.ndarray | None:
        """Scores of every item for a user's last ``history_len`` training interactions (None: no history)."""
        return self.score_history(self.histories.recent(user_id, self.history_len))

    def indices_of(self, item_ids: list[str]) -> np.ndarray:
        """Catalog rows of the known ids among ``item_ids`` (unknown ids are ignored)."""
        return np.array([self.item_index[i] for i in item_ids if i in self.item_index], dtype=np.int64)

    def _top(self, scores: np.ndarray, k: int, exclude: np.ndarray) -> list[tuple[str, float]]:
        scores = scores.astype(np.float64).copy()
        scores[exclude] = -np.inf
        top = np.argsort(-scores, kind="stable")[:k]
        return [(self.item_ids[i], float(scores[i])) for i in top if np.isfinite(scores[i])]

    def recommend(self, user_id: str, k: int = 10, exclude_purchased: bool | None = None) -> list[tuple[str, float]]:
        """Top-k distinct (item_id, score) for a known user; [] when the user has no training history."""
        scores = self.score_all(user_id)
        if scores is None or k <= 0:
            return []
        exclude = self.exclude_purchased if exclude_purchased is None else exclude_purchased
        return self._top(scores, k, self.histories.bought(user_id) if exclude else np.zeros(0, np.int64))

    def recommend_from_items(self, item_ids: list[str], k: int = 10) -> list[tuple[str, float]]:
        """Top-k items similar to the centroid of ``item_ids`` (session context), excluding those items."""
        idx = self.indices_of(item_ids)
        scores = self.score_items(idx)
        return [] if scores is None or k <= 0 else self._top(scores, k, idx)
