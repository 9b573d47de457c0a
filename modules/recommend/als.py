"""Implicit-feedback matrix factorisation (``implicit`` ALS, CPU) with event-type confidence weighting.

Confidence of a (user, item) cell = ``alpha * sum(event_weights[event])`` over the user's training
interactions with that item (``implicit`` adds the implicit 1). New SKUs have no interactions, so ALS
cannot learn their factors; :meth:`ALSRecommender.fit` learns a ridge projection from item content vectors to
item factors on the warm items and uses it for every item without training interactions. Users without
training interactions have no factors: :meth:`recommend` returns an empty list for them (the hybrid
recommender then falls back to content/popularity).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from modules.config import param_seed
from modules.recommend.features import UserHistories, event_weight_array, validate_interactions
from modules.settings import AlsSettings, load_section


def _als_params(params: dict[str, Any]) -> tuple[AlsSettings, dict[str, float], bool]:
    """The typed ``recommend.als`` section, the event weights and ``exclude_purchased`` (params over params.yaml)."""
    rec = load_section("recommend", params.get("recommend", params))
    return rec.als, dict(rec.event_weights), rec.exclude_purchased


def ridge_projection(x: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """Closed-form ridge regression weights W (with a bias row) so that ``[x, 1] @ W ~= y``."""
    xb = np.hstack([x, np.ones((len(x), 1), dtype=x.dtype)]).astype(np.float64)
    reg = l2 * np.eye(xb.shape[1])
    reg[-1, -1] = 0.0  # do not shrink the bias
    return np.linalg.solve(xb.T @ xb + reg, xb.T @ y.astype(np.float64)).astype(np.float32)


@dataclass
class ALSRecommender:
    item_ids: list[str]
    user_ids: list[str]
    user_factors: np.ndarray  # (n_users, f)
    item_factors: np.ndarray  # (n_items, f); rows of items without interactions come from the content projection
    histories: UserHistories
    exclude_purchased: bool = True
    projected: np.ndarray | None = None  # bool per item: factor came from the content projection

    def __post_init__(self) -> None:
        self.user_index = {u: i for i, u in enumerate(self.user_ids)}
        self.item_index = {iid: i for i, iid in enumerate(self.item_ids)}

    @classmethod
    def fit(
        cls,
        train_interactions: pd.DataFrame,
        item_ids: list[str],
        params: dict[str, Any],
        seed: int | None = None,
        content: np.ndarray | None = None,
    ) -> ALSRecommender:
        """Fit on training-window interactions; ``content`` (n_items, d) enables factors for new items."""
        seed = param_seed(params) if seed is None else seed
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        p, event_weights, exclude = _als_params(params)
        item_index = {iid: i for i, iid in enumerate(item_ids)}
        train = validate_interactions(train_interactions, item_index)
        if train.empty:
            raise ValueError("no training interactions: ALS cannot be fitted")
        user_ids = sorted(train["user_id"].unique().tolist())
        user_index = {u: i for i, u in enumerate(user_ids)}
        rows = train["user_id"].map(user_index).to_numpy()
        cols = train["item_id"].map(item_index).to_numpy()
        conf = event_weight_array(train["event"], event_weights)
        matrix = sp.csr_matrix((conf, (rows, cols)), shape=(len(user_ids), len(item_ids)), dtype=np.float32)
        matrix.sum_duplicates()
        model = AlternatingLeastSquares(
            factors=p.factors,
            regularization=p.regularization,
            alpha=p.alpha,
            iterations=p.iterations,
            num_threads=p.num_threads,
            random_state=seed,
        )
        with threadpool_limits(1, "blas"):  # implicit parallelises itself; nested BLAS threads only slow it down
            model.fit(matrix, show_progress=False)
        user_factors = np.asarray(model.user_factors, dtype=np.float32)
        item_factors = np.asarray(model.item_factors, dtype=np.float32).copy()

        counts = np.asarray((matrix > 0).sum(axis=0)).ravel()
        cold = counts == 0
        if content is not None and cold.any() and (~cold).sum() > 1:
            content = np.asarray(content, dtype=np.float32)
            if content.shape[0] != len(item_ids):
                raise ValueError(f"content has {content.shape[0]} rows, expected {len(item_ids)}")
            w = ridge_projection(content[~cold], item_factors[~cold], p.content_projection_l2)
            item_factors[cold] = np.hstack([content[cold], np.ones((int(cold.sum()), 1), np.float32)]) @ w
        histories = UserHistories.from_interactions(train, item_index)
        return cls(list(item_ids), user_ids, user_factors, item_factors, histories, exclude, cold)

    def score_all(self, user_id: str) -> np.ndarray | None:
        """Scores of every catalog item for a user (None for a user without training interactions)."""
        u = self.user_index.get(user_id)
        return None if u is None else self.item_factors @ self.user_factors[u]

    def recommend(self, user_id: str, k: int = 10, exclude_purchased: bool | None = None) -> list[tuple[str, float]]:
        """Top-k (item_id, score), distinct items; purchased items excluded unless told otherwise."""
        scores = self.score_all(user_id)
        if scores is None or k <= 0:
            return []
        scores = scores.astype(np.float64).copy()
        exclude = self.exclude_purchased if exclude_purchased is None else exclude_purchased
        if exclude:
            scores[self.histories.bought(user_id)] = -np.inf
        top = np.argsort(-scores, kind="stable")[:k]
        return [(self.item_ids[i], float(scores[i])) for i in top if np.isfinite(scores[i])]

    def save(self, out_dir: str | Path) -> None:
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        np.savez(d / "als.npz", user_factors=self.user_factors, item_factors=self.item_factors,
                 projected=self.projected if self.projected is not None else np.zeros(0, bool))
        (d / "als.json").write_text(json.dumps({"user_ids": self.user_ids, "item_ids": self.item_ids,
                                                "exclude_purchased": self.exclude_purchased}))
        self.histories.save(d / "als_histories.json", self.item_ids)

    @classmethod
    def load(cls, in_dir: str | Path) -> ALSRecommender:
        d = Path(in_dir)
        meta = json.loads((d / "als.json").read_text())
        arr = np.load(d / "als.npz")
        item_index = {iid: i for i, iid in enumerate(meta["item_ids"])}
        projected = arr["projected"] if arr["projected"].size else None
        return cls(meta["item_ids"], meta["user_ids"], arr["user_factors"], arr["item_factors"],
                   UserHistories.load(d / "als_histories.json", item_index), meta["exclude_purchased"], projected)
