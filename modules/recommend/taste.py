"""Attribute taste: how strongly a user's history favours each value of the catalog's own categorical columns.

Works for every item, new SKUs included, because it reads only catalog columns. Nothing here knows which columns a
catalog has: the columns are learned from the item table (text columns with 2..``max_cardinality`` distinct values,
minus ids, free text and paths), plus a price band and, when the pipeline named them, each photo's colour.

* A user's **profile** for a column is the share of each value in their recent history, smoothed toward the
  catalog's share with ``smoothing`` pseudo-counts per value.
* An item's **lift** for a column is ``log(profile share / catalog share)`` of its value: > 0 when the user favours it.
* The **score** is ``content_weight * content cosine + sum(weight_c * lift_c)``. The weights are fitted by a logistic
  regression on the training window (leave-last-out: each sampled user's last training interaction against random
  catalog items, both scored from the earlier history), so a column that says nothing about taste gets ~0 weight.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modules.recommend.features import UserHistories, price_band_boundaries
from modules.settings import load_section

NOT_ATTRIBUTES = frozenset({"item_id", "title", "description", "image_path", "price", "created_at"})
PHOTO_COLOUR = "photo_colour"
PRICE_BAND = "price_band"


def attribute_columns(items: pd.DataFrame, max_cardinality: int) -> list[str]:
    """The item table's categorical columns: text columns with 2..max_cardinality distinct non-empty values."""
    out = []
    for col in items.columns:
        if col in NOT_ATTRIBUTES or not (items[col].dtype == object or isinstance(items[col].dtype, pd.CategoricalDtype)):
            continue
        values = items[col].fillna("").astype(str).str.strip()
        if 2 <= values[values != ""].nunique() <= max_cardinality:
            out.append(col)
    return out


def _codes(values: Sequence[Any]) -> np.ndarray:
    """Integer code per value; "" and missing share one code (they are a value like any other here)."""
    return pd.factorize(pd.Series(list(values), dtype=object).fillna("").astype(str), sort=True)[0].astype(np.int32)


@dataclass
class AttributeTaste:
    names: list[str]                 # column names, one per column of ``codes``
    codes: np.ndarray                # (n_items, n_columns) int32 value code of each item
    weights: np.ndarray              # (n_columns,) fitted lift weights
    content_weight: float            # fitted weight of the content cosine
    smoothing: float                 # pseudo-counts per value toward the catalog share

    def __post_init__(self) -> None:
        self.codes = np.asarray(self.codes, dtype=np.int32)
        self.sizes = [int(self.codes[:, c].max()) + 1 if len(self.codes) else 1 for c in range(self.codes.shape[1])]
        self.shares = [np.bincount(self.codes[:, c], minlength=v) / max(len(self.codes), 1)
                       for c, v in enumerate(self.sizes)]

    @classmethod
    def from_items(cls, items: pd.DataFrame, photo_colours: Sequence[str] | None, params: dict[str, Any]
                   ) -> AttributeTaste:
        """Columns and codes from the catalog (weights 1 until :meth:`fit`)."""
        rec = params.get("recommend", params)
        cfg = load_section("recommend.taste", rec.get("taste"))
        names = attribute_columns(items, cfg.max_cardinality)
        cols = [_codes(items[c]) for c in names]
        prices = pd.to_numeric(items["price"], errors="coerce").fillna(0.0).to_numpy(np.float64)
        bounds = price_band_boundaries(prices, int(rec["n_price_bands"]))
        names.append(PRICE_BAND)
        cols.append(np.searchsorted(bounds, prices, side="right").astype(np.int32))
        if photo_colours is not None and len({str(c) for c in photo_colours}) >= 2:
            if len(photo_colours) != len(items):
                raise ValueError(f"{len(photo_colours)} photo colours for {len(items)} items")
            names.append(PHOTO_COLOUR)
            cols.append(_codes(photo_colours))
        codes = np.stack(cols, axis=1) if cols else np.zeros((len(items), 0), np.int32)
        return cls(names, codes, np.ones(len(names)), 1.0, float(cfg.smoothing))

    def lifts(self, history_idx: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """(n_rows, n_columns) float32 lift of each item's value for a user with this history (0 when empty);
        ``rows``: those items only (default: every item)."""
        codes = self.codes if rows is None else self.codes[rows]
        out = np.zeros(codes.shape, np.float32)
        hist = np.asarray(history_idx, dtype=np.int64)
        if len(hist) == 0:
            return out
        for c, (v, share) in enumerate(zip(self.sizes, self.shares, strict=True)):
            counts = np.bincount(self.codes[hist, c], minlength=v)
            prior = self.smoothing * v
            profile = (counts + prior * share) / (len(hist) + prior)
            lift = np.log(np.divide(profile, share, out=np.ones_like(profile), where=share > 0))
            out[:, c] = lift[codes[:, c]]
        return out

    def score(self, history_idx: np.ndarray, content_cosine: np.ndarray) -> np.ndarray:
        """Fitted mix of the content cosine and the attribute lifts for every item."""
        return self.content_weight * np.asarray(content_cosine, np.float64) + self.lifts(history_idx) @ self.weights

    def fit(self, histories: UserHistories, cosine: Callable[[np.ndarray], np.ndarray | None], params: dict[str, Any],
            seed: int) -> dict[str, float]:
        """Fit ``weights`` and ``content_weight`` by leave-last-out logistic regression on the training histories.

        ``cosine(history_idx)`` is the content recommender's cosine of every item with that history's centroid.
        Returns the fitted weights by name (``content`` included) for the run's metrics.
        """
        from sklearn.linear_model import LogisticRegression

        rec = params.get("recommend", params)
        cfg = load_section("recommend.taste", rec.get("taste"))
        rng = np.random.default_rng(seed)
        users = [u for u in histories.user_ids if len(histories.interacted(u)) >= 2]
        if len(users) > cfg.fit_users:
            users = [users[i] for i in sorted(rng.choice(len(users), cfg.fit_users, replace=False))]
        x_rows, y_rows = [], []
        n_items = len(self.codes)
        for u in users:
            hist = histories.recent(u, int(rec["content"]["history_len"]) + 1)
            earlier, last = hist[:-1], int(hist[-1])
            cos = cosine(earlier)
            if cos is None or last in earlier:  # a re-visit says nothing about discovering an item
                continue
            rows = np.concatenate([[last], rng.integers(0, n_items, cfg.fit_negatives)])
            x_rows.append(np.column_stack([cos[rows], self.lifts(earlier, rows)]))
            y_rows.append(np.r_[1.0, np.zeros(cfg.fit_negatives)])
        if not x_rows:
            return {}
        model = LogisticRegression(C=cfg.regularization_c, max_iter=500)
        model.fit(np.concatenate(x_rows), np.concatenate(y_rows))
        coef = model.coef_.ravel()
        self.content_weight, self.weights = float(coef[0]), coef[1:].astype(np.float64)
        return {"content": self.content_weight, **{n: float(w) for n, w in zip(self.names, self.weights, strict=True)}}

    # ------------------------------------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        np.savez(path, codes=self.codes, weights=self.weights, content_weight=self.content_weight,
                 smoothing=self.smoothing, names=np.asarray(self.names, dtype=str))

    @classmethod
    def load(cls, path: str | Path) -> AttributeTaste:
        arr = np.load(path)
        return cls([str(n) for n in arr["names"]], arr["codes"], arr["weights"], float(arr["content_weight"]),
                   float(arr["smoothing"]))
