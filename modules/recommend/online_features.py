"""Per-user online features: the one definition of what the Feast ``user_features`` view holds per user.

Two writers fill the same row, so the rules live here once:
  * FeastPublisher (at push time) builds a row per user of the training window
    (components/feast_publisher/executor.user_table), then materialises it;
  * ``POST /events`` (serving/routes/events.py) folds one event into the user's current row with
    :func:`apply_event` and writes it back through the Feast push source.

Row fields (the schema of feature_repo/definitions.py ``user_features``):
  recent_items       last N item ids the user touched, newest first (N: :func:`recent_len`)
  session_items      the last N of them posted through ``POST /events`` since the last publish ([] at push time:
                     what the bundle's recommender has not seen yet), newest first
  recent_categories  distinct categories of ``recent_items``, in order of first appearance (newest first)
  recent_colors      distinct named colours of ``recent_items`` (photo's dominant colour), same order; "" skipped
  price_band         band (0 = cheapest) of the median price of ``recent_items``, catalog quantile bands
                     (``recommend.n_price_bands``); -1 without a priced recent item
  n_events           events counted in the row (training window + posted events)
  mean_price         running mean price over those events (an item without a price leaves it as it is; the catalog
                     format requires prices, so only a live-added item can lack one)
  top_categories, top_brand   whole-history tastes computed at push time; events leave them as they are
                              (a snapshot until the next publish: they cannot be updated exactly from the row)
  last_event_ts      unix seconds of the newest event in the row
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modules.recommend.features import price_band_boundaries

VIEW = "user_features"            # the Feast feature view (feature_repo/definitions.py)
PUSH_SOURCE = "user_events"       # its push source: what POST /events writes through
ROW_FIELDS = ("recent_items", "session_items", "recent_categories", "recent_colors", "price_band", "n_events", "mean_price",
              "top_categories", "top_brand", "last_event_ts")


def recent_len(two_tower_len: int, content_len: int) -> int:
    """N of ``recent_items``: the longer of the two windows read from it (the two-tower's history and the content
    recommender's); each reader takes its own newest items."""
    return max(int(two_tower_len), int(content_len))


def history_len(params: Mapping[str, Any]) -> int:
    """:func:`recent_len` of a params dict."""
    rec = params["recommend"]
    return recent_len(rec["two_tower"]["history_len"], rec["content"]["history_len"])


@dataclass(frozen=True)
class ItemAttrs:
    """What the profile needs to know of each catalog item, and the catalog's price-band boundaries."""

    category: Mapping[str, str]
    color: Mapping[str, str]
    price: Mapping[str, float]
    boundaries: np.ndarray

    @classmethod
    def build(cls, item_ids: Sequence[str], categories: Sequence[Any], prices: Sequence[Any],
              colors: Sequence[Any] | None, n_price_bands: int) -> ItemAttrs:
        ids = [str(i) for i in item_ids]
        price = {i: float(p) for i, p in zip(ids, prices, strict=True) if _finite(p)}
        cols = colors if colors is not None else [""] * len(ids)
        return cls(category={i: str(c) for i, c in zip(ids, categories, strict=True) if c is not None},
                   color={i: str(c or "") for i, c in zip(ids, cols, strict=True)},
                   price=price,
                   boundaries=price_band_boundaries(np.asarray(list(price.values()), dtype=np.float64), n_price_bands))

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.category


def _finite(value: Any) -> bool:
    try:
        return bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False


def _distinct(values: Iterable[str]) -> list[str]:
    return [v for v in dict.fromkeys(values) if v]


def recent_profile(recent_ids: Sequence[str], attrs: ItemAttrs) -> dict[str, Any]:
    """``recent_categories``, ``recent_colors`` and ``price_band`` of a newest-first list of item ids (ids the
    catalog does not know are skipped)."""
    known = [i for i in recent_ids if i in attrs]
    prices = [attrs.price[i] for i in known if i in attrs.price]
    band = int(np.searchsorted(attrs.boundaries, float(np.median(prices)), side="right")) if prices else -1
    return {"recent_categories": _distinct(attrs.category[i] for i in known),
            "recent_colors": _distinct(attrs.color.get(i, "") for i in known),
            "price_band": band}


def apply_event(row: Mapping[str, Any] | None, item_id: str, ts: int, attrs: ItemAttrs, n_recent: int
                ) -> dict[str, Any]:
    """The user's row after one event on ``item_id``. Events are applied in arrival order; an item seen again is
    listed again (as in the training histories, where a repeat weighs twice). ``row`` None or empty: a user the
    store has not seen yet."""
    row = dict(row or {})
    recent = [item_id, *(str(i) for i in (row.get("recent_items") or []))][:n_recent]
    n_old = int(row.get("n_events") or 0)
    mean = row.get("mean_price")
    price = attrs.price.get(item_id)
    if price is not None:
        mean = price if mean is None or n_old == 0 else (float(mean) * n_old + price) / (n_old + 1)
    last = row.get("last_event_ts")
    return {
        "recent_items": recent,
        "session_items": [item_id, *(str(i) for i in (row.get("session_items") or []))][:n_recent],
        **recent_profile(recent, attrs),
        "n_events": n_old + 1,
        "mean_price": float(mean) if mean is not None else 0.0,
        "top_categories": [str(c) for c in (row.get("top_categories") or [])],
        "top_brand": str(row.get("top_brand") or ""),
        "last_event_ts": max(int(ts), int(last)) if last is not None else int(ts),
    }
