"""Personalised search: the two-tower's query (user) tower embeds the searching user, and each candidate's score
``user embedding . item embedding`` reaches the re-ranker as its ``two_tower`` feature (and ``explain.two_tower``).

The user's query-tower input is built the way the two-tower was trained (``modules.recommend.features``
``user_query_features``): ``history_emb`` is the mean content vector (``tower_content``: L2-normalised text then image
embedding) of the user's last ``history_len`` items, ``taste`` the category and price-band distribution of the items
seen. The items come from the fresh online features (``recent_items``, newest first, written at push time and by
``POST /events``) when the store answers, else from the bundle's snapshot history of the user.

Scores are computed lazily, only for the items the engine asks about (its candidates): :class:`UserScores` is the
``{item_id: score}`` mapping the engine's ``context["two_tower"]`` hook takes, and each lookup is one dot product.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modules.recommend.features import ItemFeatures, taste_from_counts, tower_content


class UserScores(Mapping[str, float]):
    """``{item_id: user . item}`` over the catalog, each value computed (and kept) when first read."""

    def __init__(self, user_vector: np.ndarray, item_vectors: np.ndarray, index: Mapping[str, int]) -> None:
        self.user_vector = np.asarray(user_vector, np.float32)
        self.item_vectors = item_vectors
        self.index = index
        self._cache: dict[str, float] = {}

    def __getitem__(self, item_id: str) -> float:
        value = self._cache.get(item_id)
        if value is None:
            value = self._cache[item_id] = float(self.item_vectors[self.index[item_id]] @ self.user_vector)
        return value

    def get(self, item_id: str, default: Any = None) -> Any:
        return self[item_id] if item_id in self.index else default

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.index

    def __iter__(self) -> Iterator[str]:
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)


class UserTower:
    """The exported two-tower (``SavedTwoTower``) with the item-side inputs of one catalog precomputed: item
    embeddings, content vectors and taste one-hots, all in ``item_ids`` order."""

    def __init__(self, saved: Any, item_ids: Sequence[str], content: np.ndarray, item_features: ItemFeatures) -> None:
        self.saved = saved
        self.item_ids = [str(i) for i in item_ids]
        self.index = {iid: r for r, iid in enumerate(self.item_ids)}
        self.content = np.asarray(content, np.float32)
        self.features = item_features
        self.onehots = item_features.taste_onehots()
        self.history_len = int(saved.spec["history_len"])
        self.item_vectors = np.asarray(saved.candidate_embeddings(
            self.item_ids, self.content, [str(c) for c in item_features.category],
            [str(b) for b in item_features.brand], item_features.price), np.float32)

    @classmethod
    def from_engine(cls, engine: Any, two_tower_dir: str | Path) -> UserTower:
        """The tower in ``two_tower_dir`` over the engine's catalog (its alive rows; item vectors from its dense
        indexes, vocabularies and price bands from the tower's own export)."""
        from modules.recommend.two_tower_export import SavedTwoTower

        saved = SavedTwoTower(two_tower_dir)
        state = engine.state
        rows = np.flatnonzero(np.asarray(state.alive, bool))
        items = state.items.iloc[rows]
        text = state.text_index.vectors[rows]
        dim = int(saved.spec["content_dim"])
        image = state.image_index.vectors[rows] if dim > text.shape[1] else None
        content = tower_content(text, image)
        if content.shape[1] != dim:
            raise ValueError(f"the two-tower expects content of dimension {dim}; the engine's vectors give "
                             f"{content.shape[1]}")
        feats = ItemFeatures(item_ids=items["item_id"].astype(str).tolist(),
                             category=items["category"].astype(str).to_numpy(dtype=object),
                             brand=items["brand"].astype(str).to_numpy(dtype=object),
                             price=items["price"].to_numpy(dtype=np.float32),
                             category_vocab=list(saved.spec["category_vocab"]),
                             brand_vocab=list(saved.spec["brand_vocab"]),
                             price_boundaries=np.asarray(saved.spec["price_boundaries"], np.float32))
        return cls(saved, feats.item_ids, content, feats)

    def query_inputs(self, history: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
        """(history_emb (1, C), taste (1, T)) of a history given oldest first; None when no item of it is known."""
        idx = np.asarray([self.index[i] for i in (str(h) for h in history) if i in self.index], np.int64)
        if not len(idx):
            return None
        hist = self.content[idx[-self.history_len:]].mean(axis=0, keepdims=True)
        taste = taste_from_counts(self.onehots[idx].sum(axis=0, keepdims=True), len(self.features.category_vocab))
        return hist.astype(np.float32), taste

    def user_vectors(self, user_ids: Sequence[str], histories: Sequence[Sequence[str]]) -> np.ndarray:
        """(n, D) query-tower embeddings; a user whose history holds no known item gets a zero row."""
        out = np.zeros((len(user_ids), self.item_vectors.shape[1]), np.float32)
        inputs = [self.query_inputs(h) for h in histories]
        keep = [r for r, x in enumerate(inputs) if x is not None]
        if keep:
            hist = np.concatenate([inputs[r][0] for r in keep])
            taste = np.concatenate([inputs[r][1] for r in keep])
            out[keep] = self.saved.query_embeddings([str(user_ids[r]) for r in keep], hist, taste)
        return out

    def scores(self, user_id: str, history: Sequence[str]) -> UserScores | None:
        """The user's lazy candidate scores, or None when the history holds no item the tower knows."""
        vec = self.user_vectors([user_id], [history])[0]
        return UserScores(vec, self.item_vectors, self.index) if np.any(vec) else None


def user_history(snapshot: Sequence[str], online: Mapping[str, Any] | None) -> list[str]:
    """The user's items oldest first, as fresh as the online features make it: the bundle's ``snapshot`` history
    (oldest first, the training window) followed by the online ``session_items`` (newest first: events posted since
    the last publish). A user the bundle does not know but the store does (events only) gets the online
    ``recent_items``."""
    online = online or {}
    session = [str(i) for i in reversed(online.get("session_items") or [])]
    if len(snapshot) or session:
        return [str(i) for i in snapshot] + session
    return [str(i) for i in reversed(online.get("recent_items") or [])]


def snapshot_histories(interactions: Any) -> dict[str, list[str]]:
    """user_id -> item ids oldest first, from an interactions frame (user_id, item_id, ts): the training window's
    histories, as the bundle's recommender holds them."""
    frame = interactions.sort_values(["user_id", "ts"], kind="stable")
    return {str(u): g.astype(str).tolist() for u, g in frame.groupby("user_id", sort=False)["item_id"]}


def query_contexts(tower: UserTower, queries: Sequence[Mapping[str, Any]], histories: Mapping[str, Sequence[str]]
                   ) -> dict[str, dict[str, Any]]:
    """qid -> the engine ``context`` (``{"two_tower": UserScores}``) of every query that carries a ``user_id`` whose
    history the tower can embed (one batched query-tower call)."""
    asked = [q for q in queries if q.get("user_id") is not None]
    users = [str(q["user_id"]) for q in asked]
    vecs = tower.user_vectors(users, [histories.get(u, []) for u in users])
    return {str(q["qid"]): {"two_tower": UserScores(v, tower.item_vectors, tower.index)}
            for q, v in zip(asked, vecs, strict=True) if np.any(v)}
