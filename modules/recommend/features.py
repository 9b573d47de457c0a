"""User histories and taste features shared by every recommender.

Everything here is computed from *training-window* interactions only (``ts < cutoff_ts``); the
callers split first (:func:`temporal_split`) and never hand held-out rows to these builders.

Vocabulary used throughout the package:

* item index: the row of an item in ``items`` (the order of ``items.item_id``), the same row order as
  every content-embedding array (text, image, colour).
* history: a user's training interactions in time order, as item indices.
* taste vector: ``[category distribution | price-band distribution]`` over the user's history
  (length ``len(category_vocab) + n_price_bands``), each block summing to 1 (all zeros when empty).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

EVENTS: tuple[str, ...] = ("view", "click", "add_to_cart", "purchase")
INTERACTION_COLUMNS: tuple[str, ...] = ("user_id", "item_id", "event", "ts")
ITEM_COLUMNS: tuple[str, ...] = ("item_id", "category", "brand", "price")


def validate_items(items: pd.DataFrame) -> pd.DataFrame:
    """Check the item table has what the recommenders need; return a typed copy (ids, category, brand as str)."""
    if not isinstance(items, pd.DataFrame):
        raise TypeError(f"items must be a pandas DataFrame, got {type(items).__name__}")
    missing = [c for c in ITEM_COLUMNS if c not in items.columns]
    if missing:
        raise ValueError(f"items is missing columns {missing}")
    out = items.copy()
    for col in ("item_id", "category", "brand"):
        out[col] = out[col].fillna("").astype(str)
    out["price"] = pd.to_numeric(out["price"], errors="coerce").fillna(0.0).clip(lower=0.0).astype(float)
    if out["item_id"].duplicated().any():
        dup = out.loc[out["item_id"].duplicated(), "item_id"].iloc[0]
        raise ValueError(f"items has duplicate item_id values (e.g. {dup!r})")
    return out.reset_index(drop=True)


def validate_interactions(interactions: pd.DataFrame, item_index: dict[str, int] | None = None) -> pd.DataFrame:
    """Return a typed copy of ``interactions`` (user_id/item_id/event str, ts int).

    Unknown events raise ``ValueError``. When ``item_index`` is given, rows whose item is not in the
    catalog are dropped (with a logged count) rather than crashing a model later.
    """
    if not isinstance(interactions, pd.DataFrame):
        raise TypeError(f"interactions must be a pandas DataFrame, got {type(interactions).__name__}")
    missing = [c for c in INTERACTION_COLUMNS if c not in interactions.columns]
    if missing:
        raise ValueError(f"interactions is missing columns {missing}")
    out = interactions.loc[:, list(INTERACTION_COLUMNS)].copy()
    for col in ("user_id", "item_id", "event"):
        out[col] = out[col].astype(str)
    out["ts"] = pd.to_numeric(out["ts"], errors="raise").astype(np.int64)
    bad = sorted(set(out["event"]) - set(EVENTS))
    if bad:
        raise ValueError(f"unknown event types {bad}; expected one of {list(EVENTS)}")
    if item_index is not None:
        known = out["item_id"].isin(item_index.keys())
        if not known.all():
            log.warning("dropping %d interactions on items missing from the catalog", int((~known).sum()))
            out = out.loc[known]
    return out.reset_index(drop=True)


def temporal_split(interactions: pd.DataFrame, cutoff_ts: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split at ``cutoff_ts``: training rows have ``ts < cutoff_ts``, held-out rows ``ts >= cutoff_ts``."""
    ts = interactions["ts"].to_numpy()
    train = interactions.loc[ts < cutoff_ts].reset_index(drop=True)
    test = interactions.loc[ts >= cutoff_ts].reset_index(drop=True)
    return train, test


def event_weight_array(events: pd.Series | np.ndarray, event_weights: dict[str, float]) -> np.ndarray:
    """Per-row confidence weight of each event (``params.recommend.event_weights``)."""
    missing = sorted(set(map(str, np.unique(np.asarray(events)))) - set(event_weights))
    if missing:
        raise ValueError(f"event_weights has no weight for events {missing}")
    return pd.Series(np.asarray(events)).map(event_weights).to_numpy(dtype=np.float32)


def price_band_boundaries(prices: np.ndarray, n_bands: int) -> np.ndarray:
    """Inner quantile boundaries that cut the catalog's prices into ``n_bands`` roughly equal bands."""
    if n_bands < 1:
        raise ValueError("n_price_bands must be >= 1")
    if len(prices) == 0 or n_bands == 1:
        return np.zeros(0, dtype=np.float32)
    qs = np.quantile(np.asarray(prices, dtype=np.float64), np.linspace(0, 1, n_bands + 1)[1:-1])
    return np.unique(qs).astype(np.float32)


@dataclass
class ItemFeatures:
    """Catalog-level lookups: id <-> row, category/brand vocabularies, price bands."""

    item_ids: list[str]
    category: np.ndarray  # str per item
    brand: np.ndarray  # str per item
    price: np.ndarray  # float32 per item
    category_vocab: list[str]
    brand_vocab: list[str]
    price_boundaries: np.ndarray  # float32, ascending; band = searchsorted(boundaries, price, "right")
    index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {iid: i for i, iid in enumerate(self.item_ids)}
        self._cat_idx = np.array([self.category_vocab.index(c) if c in self.category_vocab else -1 for c in self.category])

    @classmethod
    def from_items(cls, items: pd.DataFrame, n_price_bands: int) -> ItemFeatures:
        items = validate_items(items)
        prices = items["price"].to_numpy(dtype=np.float32)
        return cls(
            item_ids=items["item_id"].tolist(),
            category=items["category"].to_numpy(dtype=object),
            brand=items["brand"].to_numpy(dtype=object),
            price=prices,
            category_vocab=sorted(items["category"].unique().tolist()),
            brand_vocab=sorted(items["brand"].unique().tolist()),
            price_boundaries=price_band_boundaries(prices, n_price_bands),
        )

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_price_bands(self) -> int:
        return len(self.price_boundaries) + 1

    @property
    def taste_dim(self) -> int:
        return len(self.category_vocab) + self.n_price_bands

    def category_index(self) -> np.ndarray:
        """Category vocabulary index per item (-1 for a category outside the vocabulary)."""
        return self._cat_idx

    def price_band(self, prices: np.ndarray | None = None) -> np.ndarray:
        p = self.price if prices is None else np.asarray(prices, dtype=np.float32)
        return np.searchsorted(self.price_boundaries, p, side="right").astype(np.int64)

    def taste_onehots(self) -> np.ndarray:
        """(n_items, taste_dim) float32: one-hot category then one-hot price band of each item."""
        out = np.zeros((self.n_items, self.taste_dim), dtype=np.float32)
        rows = np.arange(self.n_items)
        cat = self.category_index()
        ok = cat >= 0
        out[rows[ok], cat[ok]] = 1.0
        out[rows, len(self.category_vocab) + self.price_band()] = 1.0
        return out

    def to_json(self) -> dict:
        return {
            "category_vocab": self.category_vocab,
            "brand_vocab": self.brand_vocab,
            "price_boundaries": [float(b) for b in self.price_boundaries],
        }


def taste_from_counts(counts: np.ndarray, n_categories: int) -> np.ndarray:
    """Normalise summed taste one-hots (..., taste_dim) into per-block distributions."""
    counts = np.asarray(counts, dtype=np.float32)
    cat, band = counts[..., :n_categories], counts[..., n_categories:]
    cat_sum = cat.sum(axis=-1, keepdims=True)
    band_sum = band.sum(axis=-1, keepdims=True)
    cat = np.divide(cat, cat_sum, out=np.zeros_like(cat), where=cat_sum > 0)
    band = np.divide(band, band_sum, out=np.zeros_like(band), where=band_sum > 0)
    return np.concatenate([cat, band], axis=-1)


@dataclass
class UserHistories:
    """Each user's training interactions in time order (item indices) and the items they purchased."""

    sequences: dict[str, np.ndarray]  # user_id -> int64 item indices, oldest first
    purchased: dict[str, np.ndarray]  # user_id -> sorted unique int64 item indices
    max_ts: int | None = None  # latest training timestamp seen (None when empty); used by leakage checks

    @classmethod
    def from_interactions(cls, train: pd.DataFrame, item_index: dict[str, int]) -> UserHistories:
        train = validate_interactions(train, item_index)
        if train.empty:
            return cls({}, {}, None)
        train = train.sort_values(["user_id", "ts"], kind="stable")
        idx = train["item_id"].map(item_index).to_numpy(dtype=np.int64)
        users = train["user_id"].to_numpy()
        is_purchase = (train["event"] == "purchase").to_numpy()
        sequences: dict[str, np.ndarray] = {}
        purchased: dict[str, np.ndarray] = {}
        bounds = np.flatnonzero(np.r_[True, users[1:] != users[:-1], True])
        for start, end in zip(bounds[:-1], bounds[1:], strict=False):
            user = str(users[start])
            sequences[user] = idx[start:end]
            purchased[user] = np.unique(idx[start:end][is_purchase[start:end]])
        return cls(sequences, purchased, int(train["ts"].max()))

    def __contains__(self, user_id: object) -> bool:
        return user_id in self.sequences

    @property
    def user_ids(self) -> list[str]:
        return list(self.sequences)

    def recent(self, user_id: str, n: int) -> np.ndarray:
        seq = self.sequences.get(user_id)
        return np.zeros(0, dtype=np.int64) if seq is None else seq[-n:]

    def interacted(self, user_id: str) -> np.ndarray:
        seq = self.sequences.get(user_id)
        return np.zeros(0, dtype=np.int64) if seq is None else np.unique(seq)

    def bought(self, user_id: str) -> np.ndarray:
        return self.purchased.get(user_id, np.zeros(0, dtype=np.int64))

    def save(self, path: str | Path, item_ids: list[str]) -> None:
        """Write as JSON with item *ids* (not indices) so a reordered catalog cannot silently misalign."""
        data = {
            "max_ts": self.max_ts,
            "users": {
                u: {"history": [item_ids[i] for i in seq], "purchased": [item_ids[i] for i in self.purchased[u]]}
                for u, seq in self.sequences.items()
            },
        }
        Path(path).write_text(json.dumps(data))

    @classmethod
    def load(cls, path: str | Path, item_index: dict[str, int]) -> UserHistories:
        data = json.loads(Path(path).read_text())
        seqs, bought = {}, {}
        for u, rec in data["users"].items():
            seqs[u] = np.array([item_index[i] for i in rec["history"] if i in item_index], dtype=np.int64)
            bought[u] = np.array(sorted({item_index[i] for i in rec["purchased"] if i in item_index}), dtype=np.int64)
        return cls(seqs, bought, data.get("max_ts"))


def history_embedding(item_idx: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Mean content embedding of the given items (a zero vector for an empty history)."""
    if len(item_idx) == 0:
        return np.zeros(content.shape[1], dtype=np.float32)
    return content[item_idx].mean(axis=0).astype(np.float32)


def user_query_features(
    user_ids: list[str],
    histories: UserHistories,
    content: np.ndarray,
    item_features: ItemFeatures,
    history_len: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(history_emb (n, C), taste (n, T)) for users as of the end of the training window."""
    onehots = item_features.taste_onehots()
    hist = np.zeros((len(user_ids), content.shape[1]), dtype=np.float32)
    taste = np.zeros((len(user_ids), item_features.taste_dim), dtype=np.float32)
    for r, u in enumerate(user_ids):
        seq = histories.sequences.get(u)
        if seq is None or len(seq) == 0:
            continue
        hist[r] = history_embedding(seq[-history_len:], content)
        taste[r] = onehots[seq].sum(axis=0)
    return hist, taste_from_counts(taste, len(item_features.category_vocab))


def point_in_time_features(
    train: pd.DataFrame, item_features: ItemFeatures, history_len: int
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Per-interaction query features that use only that user's *earlier* interactions.

    Returns ``(rows, history_idx, taste)`` where ``rows`` is ``train`` sorted by (user, ts) with an
    ``item_idx`` column, ``history_idx`` is (n, history_len) int64 item indices of the previous
    interactions (most recent last, -1 padded on the left) and ``taste`` is (n, T) float32 built from all
    earlier interactions. The target interaction itself is never part of its own features.
    """
    rows = validate_interactions(train, item_features.index).sort_values(["user_id", "ts"], kind="stable")
    rows = rows.reset_index(drop=True)
    rows["item_idx"] = rows["item_id"].map(item_features.index).astype(np.int64)
    grouped = rows.groupby("user_id", sort=False)["item_idx"]
    hist = np.full((len(rows), history_len), -1, dtype=np.int64)
    for lag in range(1, history_len + 1):
        hist[:, history_len - lag] = grouped.shift(lag).fillna(-1).to_numpy(dtype=np.int64)
    onehots = item_features.taste_onehots()[rows["item_idx"].to_numpy()]
    cum = pd.DataFrame(onehots).groupby(rows["user_id"].to_numpy(), sort=False).cumsum().to_numpy(dtype=np.float32)
    prior = cum - onehots  # exclude the current interaction
    return rows, hist, taste_from_counts(prior, len(item_features.category_vocab))


def item_interaction_counts(train: pd.DataFrame, item_index: dict[str, int], n_items: int) -> np.ndarray:
    """Number of training interactions per item (int64, catalog order)."""
    counts = np.zeros(n_items, dtype=np.int64)
    if len(train):
        idx = train["item_id"].map(item_index).dropna().to_numpy(dtype=np.int64)
        np.add.at(counts, idx, 1)
    return counts


def weighted_popularity(
    train: pd.DataFrame, item_index: dict[str, int], n_items: int, event_weights: dict[str, float]
) -> np.ndarray:
    """Event-weighted interaction mass per item (float32, catalog order)."""
    pop = np.zeros(n_items, dtype=np.float32)
    if len(train):
        known = train["item_id"].isin(item_index.keys())
        sub = train.loc[known]
        idx = sub["item_id"].map(item_index).to_numpy(dtype=np.int64)
        np.add.at(pop, idx, event_weight_array(sub["event"], event_weights))
    return pop


def tower_content(text_emb: np.ndarray, image_emb: np.ndarray | None = None) -> np.ndarray:
    """Candidate-tower content input: L2-normalised text embedding, then L2-normalised image embedding if any."""
    blocks = [np.asarray(text_emb, dtype=np.float32)]
    if image_emb is not None:
        blocks.append(np.asarray(image_emb, dtype=np.float32))
    out = []
    for b in blocks:
        n = np.linalg.norm(b, axis=1, keepdims=True)
        out.append(np.divide(b, n, out=np.zeros_like(b), where=n > 0))
    return np.concatenate(out, axis=1)
