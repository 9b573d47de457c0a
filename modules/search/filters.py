"""Filters: validation of user-supplied search filters, and the mask of rows a query may return (filters, tombstones
and, with ``hard_intents``, the parsed intents). Every retriever searches only these rows."""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from modules.search.query import Intents
    from modules.search.state import EngineState

FILTER_KEYS = ("category", "price_min", "price_max", "gender")
GENDERS = ("women", "men", "unisex")


def validate_filters(filters: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return a clean filter dict or raise ``ValueError`` naming the problem.

    Accepted keys: ``category`` (str), ``gender`` (women/men/unisex), ``price_min`` / ``price_max`` (finite
    numbers >= 0, ``price_min <= price_max``). ``None`` values are ignored.
    """
    if filters is None:
        return {}
    if not isinstance(filters, Mapping):
        raise ValueError(f"filters must be a mapping, got {type(filters).__name__}")
    unknown = sorted(set(filters) - set(FILTER_KEYS))
    if unknown:
        raise ValueError(f"unknown filter key(s) {unknown}; allowed: {list(FILTER_KEYS)}")
    out: dict[str, Any] = {}
    for key in ("category", "gender"):
        val = filters.get(key)
        if val is None:
            continue
        if not isinstance(val, str) or not val.strip():
            raise ValueError(f"filter {key!r} must be a non-empty string")
        out[key] = val.strip().lower()
    if "gender" in out and out["gender"] not in GENDERS:
        raise ValueError(f"filter 'gender' must be one of {list(GENDERS)}, got {out['gender']!r}")
    for key in ("price_min", "price_max"):
        val = filters.get(key)
        if val is None:
            continue
        if isinstance(val, bool) or not isinstance(val, (int, float, np.integer, np.floating)):
            raise ValueError(f"filter {key!r} must be a number, got {val!r}")
        val = float(val)
        if not math.isfinite(val) or val < 0:
            raise ValueError(f"filter {key!r} must be a finite number >= 0, got {val}")
        out[key] = val
    if "price_min" in out and "price_max" in out and out["price_min"] > out["price_max"]:
        raise ValueError(f"price_min ({out['price_min']}) is greater than price_max ({out['price_max']})")
    return out


def filter_mask(items: pd.DataFrame, filters: Mapping[str, Any]) -> np.ndarray | None:
    """Boolean mask of the rows of ``items`` that satisfy validated ``filters`` (``None`` when no filter)."""
    if not filters:
        return None
    mask = np.ones(len(items), dtype=bool)
    if "category" in filters:
        mask &= items["category"].astype(str).str.lower().to_numpy() == filters["category"]
    if "gender" in filters:
        mask &= items["gender"].astype(str).str.lower().to_numpy() == filters["gender"]
    price = pd.to_numeric(items["price"], errors="coerce").to_numpy(dtype=np.float64)
    if "price_min" in filters:
        mask &= price >= filters["price_min"]
    if "price_max" in filters:
        mask &= price <= filters["price_max"]
    return mask


def allowed_rows(state: EngineState, filters: Mapping[str, Any] | None, intents: Intents | None = None,
                 fresh: bool = False) -> np.ndarray:
    """The rows a query may return: alive, passing ``filters`` and, when ``intents`` is given (hard intents), its
    category, gender, price range and colour; with ``fresh``, only products added within ``retrieval.fresh_days`` of
    the newest one, unless none of those passes (then freshness is ignored rather than answering nothing)."""
    mask = state.alive.copy()
    fm = filter_mask(state.items, validate_filters(filters))
    if fm is not None:
        mask &= fm
    if intents is not None:  # hard intents
        if intents.category:
            mask &= state.cat == intents.category
        if intents.gender:
            mask &= (state.gender == intents.gender) | (state.gender == "unisex")
        if intents.price_min is not None:
            mask &= state.price >= intents.price_min
        if intents.price_max is not None:
            mask &= state.price <= intents.price_max
        if intents.color:
            mask &= color_mask(state, intents.color)
    if fresh:
        recent = mask & recent_mask(state)
        if recent.any():
            mask = recent
    return mask


def recent_mask(state: EngineState) -> np.ndarray:
    """Rows added within ``retrieval.fresh_days`` of the newest live row, plus rows added live through the API without
    a creation time (all rows when no row has a creation time)."""
    alive = state.created[state.alive]
    newest = int(alive.max()) if len(alive) else 0
    if newest <= 0:
        return np.ones(len(state.created), dtype=bool)
    undated_live = state.live_added & (state.created <= 0)
    return (state.created >= newest - int(state.retrieval.fresh_days * 86_400)) | undated_live


def color_mask(state: EngineState, color: str) -> np.ndarray:
    """Rows whose title colour or image dominant colour is ``color`` (cached until the catalog changes)."""
    if color not in state.color_masks:
        state.color_masks[color] = color_match(state, np.arange(state.n_rows), color).astype(bool)
    return state.color_masks[color]


def dominant_mask(state: EngineState, color: str) -> np.ndarray:
    """float32 per row: 1.0 where the photo's named dominant colour is ``color`` (cached until the catalog changes;
    comparing 100K names cost ~2 ms per photo query)."""
    if color not in state.dominant_masks:
        state.dominant_masks[color] = (state.item_color_names == color).astype(np.float32)
    return state.dominant_masks[color]


def color_evidence(state: EngineState, color: str) -> np.ndarray:
    """float32 per row: how strongly the item is ``color``: its photo's share of pixels voting for that colour
    (0..1, :func:`modules.encoders.color.color_shares`), plus 1.0 when its title names the colour. Engines without
    colour features fall back to 1.0 for a photo whose named dominant colour it is. Cached until the catalog
    changes."""
    if color not in state.color_evidence:
        from modules.encoders.color_naming import COLOR_NAMES

        if color not in COLOR_NAMES:
            score = np.zeros(state.n_rows, np.float32)
        elif state.color_feats is not None:
            from modules.encoders.color import color_shares

            score = color_shares(state.color_feats, state.params)[:, COLOR_NAMES.index(color)].copy()
        else:
            score = dominant_mask(state, color).copy()
        score += np.fromiter((color in found for found in state.title_colors), np.float32, state.n_rows)
        state.color_evidence[color] = score
    return state.color_evidence[color]


def color_match(state: EngineState, rows: np.ndarray, color: str | None) -> np.ndarray:
    """1.0 for each of ``rows`` whose title colour or image dominant colour is ``color``, else 0.0."""
    if not color:
        return np.zeros(len(rows), np.float32)
    return np.array([color in state.title_colors[r] or state.item_colors[r] == color for r in rows], np.float32)
