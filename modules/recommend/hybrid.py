"""Hybrid recommender: collaborative (two-tower or ALS) blended with content, per item by interaction count.

For a known user, every catalog item gets
    score_i = w(n_i) * z(collab_i) + (1 - w(n_i)) * z(content_i),   w(n) = max_collab_weight * min(1, n / warm_interactions)
where n_i is the item's number of training interactions and z() standardises scores over the catalog, so
new SKUs (n_i = 0) are ranked on content alone and can compete with warm items.

Fallbacks (``RecommendResponse.fallback``):
    None               known user, hybrid scores
    "cold_user"        user without history: popular items per category, or, with a session ``context``
                       (recently viewed item ids), content similarity to the context within its categories
                       blended with popularity
    "no_interactions"  the catalog has no training interactions at all: content from context, else newest
                       items per category
    "content_only"     the feature store is unavailable (``user_features={"available": False}``): the user's
                       snapshot history/context is scored by content only; no collaborative vector is used
Each :class:`Rec` carries the ``path`` that produced it: "hybrid", "two_tower", "als", "content", "popular" or
"new_arrival".

New arrivals (``recommend.hybrid.new_arrival_slots`` > 0): items with no training interactions created within
``new_arrival_days`` of the newest item. A new item's blended score is its content score alone, and next to tens of
thousands of warm items it seldom reaches the top k; the slots give the last places of a known user's list to the
best-scored new arrivals when fewer than that many made it on their own (docs/benchmark_results.md "Cold start").

``user_features`` (from the online feature store, optional): ``{"available": bool, "recent_item_ids": [...],
"session_item_ids": [...]}``; ``recent_item_ids`` replaces the bundle's snapshot history for the content part;
``session_item_ids`` (items posted to ``POST /events`` since the last publish, which the collaborative vectors have
not seen) pull a known user's final score toward them:
    score = (1 - session_weight) * z(hybrid score) + session_weight * z(content similarity to the session items)
(``recommend.hybrid.session_weight``; a user without session items scores exactly as before).

The saved form (``save``/``load``) is numpy/JSON/parquet only and never imports TensorFlow or TFX; the two-tower
SavedModel directory it was built from is referenced in ``config.json``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modules.config import param_seed
from modules.recommend.content import ContentRecommender
from modules.recommend.features import (
    ItemFeatures,
    UserHistories,
    item_interaction_counts,
    tower_content,
    user_query_features,
    validate_interactions,
    validate_items,
    weighted_popularity,
)
from modules.recommend.new_arrivals import new_arrival_index, with_new_arrivals
from modules.recommend.taste import AttributeTaste
from modules.settings import merge_section

PATHS = ("hybrid", "two_tower", "als", "content", "popular", "new_arrival")
TASTE_FILE = "taste.npz"
FALLBACKS = (None, "cold_user", "no_interactions", "content_only")
FEATURE_STORE_UNAVAILABLE: dict[str, Any] = {"available": False}
MAX_TOP_K = 1000
MAX_CONTEXT = 100


@dataclass
class Rec:
    item_id: str
    score: float
    path: str


@dataclass
class RecommendResponse:
    items: list[Rec]
    fallback: str | None


@dataclass
class CollabVectors:
    """User and item vectors of a collaborative model; score = user_vector . item_vector."""

    kind: str  # "two_tower" | "als"
    user_ids: list[str]
    user_vectors: np.ndarray
    item_vectors: np.ndarray  # catalog order

    def __post_init__(self) -> None:
        self.user_index = {u: i for i, u in enumerate(self.user_ids)}

    def score_all(self, user_id: str) -> np.ndarray | None:
        u = self.user_index.get(user_id)
        return None if u is None else self.item_vectors @ self.user_vectors[u]


def _zscore(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    sd = float(x.std())
    return np.zeros_like(x) if sd == 0 else (x - x.mean()) / sd


def collab_weights(counts: np.ndarray, warm_interactions: float, max_collab_weight: float) -> np.ndarray:
    """w(n) = max_collab_weight * min(1, n / warm_interactions): 0 for items without interactions."""
    if warm_interactions <= 0:
        return np.full(len(counts), float(max_collab_weight))
    return float(max_collab_weight) * np.minimum(1.0, np.asarray(counts, dtype=np.float64) / float(warm_interactions))


class HybridRecommender:
    def __init__(
        self,
        items: pd.DataFrame,
        content: ContentRecommender,
        collab: CollabVectors | None,
        counts: np.ndarray,
        popularity: np.ndarray,
        params: dict[str, Any],
        two_tower_dir: str | None = None,
    ) -> None:
        """``items`` needs item_id and category (created_at optional), in the same order as ``content.item_ids``."""
        self.items = items.reset_index(drop=True)
        if self.items["item_id"].astype(str).tolist() != content.item_ids:
            raise ValueError("items and content recommender disagree on the catalog order")
        self.content = content
        self.collab = collab
        self.counts = np.asarray(counts, dtype=np.int64)
        self.popularity = np.asarray(popularity, dtype=np.float64)
        self.params = dict(params.get("recommend", params))
        self.two_tower_dir = two_tower_dir
        # bundles saved before a hybrid key existed (session_weight) take it from params.yaml
        h = self.params["hybrid"] = merge_section("recommend.hybrid", self.params["hybrid"])
        self.weights = collab_weights(self.counts, float(h["warm_interactions"]), float(h["max_collab_weight"]))
        self.category = self.items["category"].astype(str).to_numpy()
        created = self.items["created_at"] if "created_at" in self.items else pd.Series(np.zeros(len(self.items)))
        self.created_at = pd.to_numeric(created, errors="coerce").fillna(0).to_numpy(dtype=np.int64)
        self.new_arrivals = new_arrival_index(self.counts, self.created_at, float(h["new_arrival_days"]))

    # ------------------------------------------------------------------------------------------------ scoring
    @property
    def histories(self) -> UserHistories:
        return self.content.histories

    @property
    def item_ids(self) -> list[str]:
        return self.content.item_ids

    @property
    def has_interactions(self) -> bool:
        return bool(self.counts.sum() > 0)

    def _content_scores(self, history_idx: np.ndarray, context_idx: np.ndarray) -> np.ndarray | None:
        parts = [s for s in (self.content.score_history(history_idx), self.content.score_items(context_idx))
                 if s is not None]
        return None if not parts else np.mean(parts, axis=0)

    def score_user(
        self, user_id: str, context_idx: np.ndarray | None = None, history_idx: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(scores, path per item) for a user with history, or None when neither collab nor content applies."""
        context_idx = np.zeros(0, np.int64) if context_idx is None else context_idx
        if history_idx is None:
            history_idx = self.histories.recent(user_id, self.content.history_len)
        content = self._content_scores(history_idx, context_idx)
        collab = self.collab.score_all(user_id) if self.collab is not None else None
        if collab is None:
            if content is None:
                return None
            return _zscore(content), np.full(len(content), "content", dtype=object)
        if content is None:
            return _zscore(collab), np.full(len(collab), self.collab.kind, dtype=object)
        w = self.weights
        scores = w * _zscore(collab) + (1.0 - w) * _zscore(content)
        paths = np.where(w <= 0, "content", np.where(w >= 1, self.collab.kind, "hybrid")).astype(object)
        return scores, paths

    def _with_session(self, scores: np.ndarray, session_idx: np.ndarray) -> np.ndarray:
        """``scores`` pulled toward the content of the fresh session items (unchanged without any)."""
        session = self.content.score_items(session_idx)
        if session is None:
            return scores
        f = float(self.params["hybrid"]["session_weight"])
        return (1.0 - f) * _zscore(scores) + f * _zscore(session)

    def _popular_by_category(self, k: int, exclude: np.ndarray) -> list[Rec]:
        """Round-robin over categories (most popular category first), most popular (then newest) items first."""
        order = np.lexsort((-self.created_at, -self.popularity))  # popularity desc, then newest
        mask = np.ones(len(order), dtype=bool)
        mask[exclude] = False
        order = order[mask[order]]
        cat_pop = pd.Series(self.popularity).groupby(self.category).sum().sort_values(ascending=False, kind="stable")
        queues = {c: [i for i in order if self.category[i] == c] for c in cat_pop.index}
        out: list[Rec] = []
        rank = 0
        while len(out) < k and any(queues.values()):
            for c in cat_pop.index:
                if queues[c] and len(out) < k:
                    i = queues[c].pop(0)
                    out.append(Rec(self.item_ids[i], float(-rank), "popular"))
                    rank += 1
        return out

    def _cold_with_context(self, context_idx: np.ndarray, k: int, exclude: np.ndarray) -> list[Rec]:
        """Content similarity to the session context, within the context's categories, blended with popularity."""
        content = self.content.score_items(context_idx)
        a = float(self.params["hybrid"]["cold_context_weight"])
        scores = a * _zscore(content) + (1.0 - a) * _zscore(np.log1p(self.popularity))
        in_cats = np.isin(self.category, np.unique(self.category[context_idx]))
        scores = scores + np.where(in_cats, 0.0, -1e6)  # other categories only fill up short lists
        return self._top(scores, np.full(len(scores), "content", dtype=object), k, exclude)

    def _top(self, scores: np.ndarray, paths: np.ndarray, k: int, exclude: np.ndarray, new_slots: int = 0
             ) -> list[Rec]:
        scores = scores.astype(np.float64).copy()
        scores[exclude] = -np.inf
        k = min(k, int(np.isfinite(scores).sum()))
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        placed = top
        if new_slots > 0:
            top = with_new_arrivals(top, scores, self.new_arrivals, exclude, new_slots)
        return [Rec(self.item_ids[i], float(scores[i]), str(paths[i]) if i in placed else "new_arrival") for i in top]

    # ------------------------------------------------------------------------------------------------ public API
    def recommend(
        self,
        user_id: str,
        top_k: int = 20,
        context: list[str] | None = None,
        user_features: dict[str, Any] | None = None,
    ) -> RecommendResponse:
        """Top-k distinct recommendations for ``user_id`` (see the module docstring for fallbacks and paths).

        ``context``: recently viewed item ids (unknown ids are ignored; they are never recommended back).
        Raises ``ValueError`` for a malformed request (bad top_k, non-string ids, oversized context).
        """
        if not isinstance(user_id, str):
            raise ValueError("user_id must be a string")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
            raise ValueError(f"top_k must be an integer in [1, {MAX_TOP_K}]")
        context = list(context or [])
        if len(context) > MAX_CONTEXT or not all(isinstance(c, str) for c in context):
            raise ValueError(f"context must be a list of at most {MAX_CONTEXT} item id strings")
        if user_features is not None and not isinstance(user_features, dict):
            raise ValueError("user_features must be a dict or None")
        ctx = self.content.indices_of(context)

        if not self.has_interactions:
            if len(ctx):
                recs = self._top(self.content.score_items(ctx), np.full(len(self.item_ids), "content", dtype=object), top_k, ctx)
            else:
                recs = self._popular_by_category(top_k, ctx)
            return RecommendResponse(recs, "no_interactions")

        feats = user_features or {}
        store_ok = feats.get("available", True) is not False
        recent = feats.get("recent_item_ids") if store_ok else None
        history_idx = (self.content.indices_of(list(recent)[: self.content.history_len]) if recent   # newest first
                       else self.histories.recent(user_id, self.content.history_len))
        exclude = np.union1d(ctx, self.histories.bought(user_id)) if self.params["exclude_purchased"] else ctx
        known = len(history_idx) > 0

        if not known:
            recs = self._cold_with_context(ctx, top_k, exclude) if len(ctx) else self._popular_by_category(top_k, exclude)
            return RecommendResponse(recs, "cold_user")
        slots = int(self.params["hybrid"]["new_arrival_slots"])
        if not store_ok:
            scores = self._content_scores(history_idx, ctx)
            return RecommendResponse(
                self._top(scores, np.full(len(scores), "content", dtype=object), top_k, exclude, slots), "content_only"
            )
        scored = self.score_user(user_id, ctx, history_idx)
        assert scored is not None  # known user: the content part always exists
        scores = self._with_session(scored[0], self.content.indices_of(list(feats.get("session_item_ids") or [])))
        return RecommendResponse(self._top(scores, scored[1], top_k, exclude, slots), None)

    # ------------------------------------------------------------------------------------------------ persistence
    def save(self, out_dir: str | Path) -> Path:
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        table = self.items[["item_id", "category"]].copy()
        table["created_at"] = self.created_at
        table["n_interactions"] = self.counts
        table["popularity"] = self.popularity
        table.to_parquet(d / "items.parquet", index=False)
        np.save(d / "content_vectors.npy", self.content.vectors.astype(np.float32))
        if self.content.taste is not None:
            self.content.taste.save(d / TASTE_FILE)
        self.histories.save(d / "histories.json", self.item_ids)
        collab = None
        if self.collab is not None:
            np.savez(d / "collab.npz", user_vectors=self.collab.user_vectors, item_vectors=self.collab.item_vectors)
            collab = {"kind": self.collab.kind, "user_ids": self.collab.user_ids}
        config = {
            "params": self.params,
            "collab": collab,
            "two_tower_dir": self.two_tower_dir,
            "content": {"history_len": self.content.history_len, "exclude_purchased": self.content.exclude_purchased},
        }
        (d / "config.json").write_text(json.dumps(config, indent=2))
        return d

    @classmethod
    def load(cls, in_dir: str | Path) -> HybridRecommender:
        d = Path(in_dir)
        if not (d / "config.json").is_file():
            raise FileNotFoundError(f"{d} is not a saved HybridRecommender (no config.json)")
        config = json.loads((d / "config.json").read_text())
        items = pd.read_parquet(d / "items.parquet")
        item_ids = items["item_id"].astype(str).tolist()
        index = {iid: i for i, iid in enumerate(item_ids)}
        content = ContentRecommender(
            item_ids,
            # memory-mapped read-only: the pages are read on first use and shared by every worker process
            np.asarray(np.load(d / "content_vectors.npy", mmap_mode="r")),
            UserHistories.load(d / "histories.json", index),
            int(config["content"]["history_len"]),
            bool(config["content"]["exclude_purchased"]),
            AttributeTaste.load(d / TASTE_FILE) if (d / TASTE_FILE).is_file() else None,
        )
        collab = None
        if config["collab"] is not None:
            arr = np.load(d / "collab.npz")
            collab = CollabVectors(config["collab"]["kind"], config["collab"]["user_ids"], arr["user_vectors"], arr["item_vectors"])
        return cls(items, content, collab, items["n_interactions"].to_numpy(), items["popularity"].to_numpy(),
                   config["params"], config["two_tower_dir"])


# ---------------------------------------------------------------------------------------------------- builders
def build_collab(
    kind: str,
    items: pd.DataFrame,
    train_interactions: pd.DataFrame,
    text_emb: np.ndarray | None,
    image_emb: np.ndarray | None,
    content_vectors: np.ndarray,
    params: dict[str, Any],
    seed: int | None = None,
    two_tower_dir: str | Path | None = None,
) -> tuple[CollabVectors, dict[str, Any]]:
    """Fit (or load) the collaborative model and return its user/item vectors plus training metrics.

    two_tower: uses the SavedModel in ``two_tower_dir`` when given, else trains in memory on
    ``tower_content(text_emb, image_emb)``. als: fits ALS; new items get content-projected factors.
    """
    seed = param_seed(params) if seed is None else seed
    rec = params.get("recommend", params)
    items = validate_items(items)
    item_ids = items["item_id"].tolist()
    if kind == "als":
        from modules.recommend.als import ALSRecommender

        als = ALSRecommender.fit(train_interactions, item_ids, params, seed=seed, content=content_vectors)
        return CollabVectors("als", als.user_ids, als.user_factors, als.item_factors), {}
    if kind != "two_tower":
        raise ValueError(f"unknown collaborative model {kind!r}; expected 'two_tower' or 'als'")
    if text_emb is None:
        raise ValueError("the two-tower model needs text embeddings")
    from modules.recommend.two_tower import train_two_tower
    from modules.recommend.two_tower_export import SavedTwoTower

    content = tower_content(text_emb, image_emb)
    if two_tower_dir is None:
        model = train_two_tower(train_interactions, items, content, params, seed=seed)
        users = model.user_vocab
        return CollabVectors("two_tower", users, model.user_embeddings(users, UserHistories.from_interactions(
            train_interactions, model.item_features.index)), model.candidate_embeddings()), model.metrics
    saved = SavedTwoTower(two_tower_dir)
    feats = ItemFeatures.from_items(items, int(rec["n_price_bands"]))
    if saved.spec["content_dim"] != content.shape[1] or saved.spec["taste_dim"] != feats.taste_dim:
        raise ValueError("the two-tower SavedModel was exported for different content/taste dimensions")
    histories = UserHistories.from_interactions(validate_interactions(train_interactions, feats.index), feats.index)
    users = histories.user_ids
    hist, taste = user_query_features(users, histories, content, feats, int(saved.spec["history_len"]))
    user_vecs = saved.query_embeddings(users, hist, taste)
    item_vecs = saved.candidate_embeddings(item_ids, content, list(feats.category), list(feats.brand), feats.price)
    return CollabVectors("two_tower", users, user_vecs, item_vecs), dict(saved.spec.get("metrics", {}))


def build_recommender(
    items: pd.DataFrame,
    train_interactions: pd.DataFrame,
    text_emb: np.ndarray | None,
    image_emb: np.ndarray | None,
    color_feats: np.ndarray | None,
    params: dict[str, Any],
    seed: int | None = None,
    two_tower_dir: str | Path | None = None,
    photo_colours: list[str] | None = None,
) -> HybridRecommender:
    """Build the serving recommender from training-window interactions (the pipeline's entry point).

    ``photo_colours``: the colour namer's name for each item's photo, a column of the content model's attribute taste.

    The collaborative model follows ``params.recommend.hybrid.collaborative``; with no training interactions
    the recommender is content/popularity only (fallback "no_interactions").
    """
    seed = param_seed(params) if seed is None else seed
    rec = params.get("recommend", params)
    items = validate_items(items)
    content = ContentRecommender.build(items, train_interactions, text_emb, image_emb, color_feats, params,
                                       photo_colours, seed)
    train = validate_interactions(train_interactions, content.item_index)
    collab = None
    if len(train):
        collab, _ = build_collab(rec["hybrid"]["collaborative"], items, train, text_emb, image_emb, content.vectors,
                                 params, seed, two_tower_dir)
    counts = item_interaction_counts(train, content.item_index, len(items))
    pop = weighted_popularity(train, content.item_index, len(items), rec["event_weights"])
    return HybridRecommender(items, content, collab, counts, pop, params,
                             str(two_tower_dir) if two_tower_dir is not None else None)
