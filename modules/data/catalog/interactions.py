"""Users with latent tastes and their interaction log.

Item popularity is Zipfian: an item's expected share of events is proportional to rank**-s over a random
permutation of ranks, so the log-log rank/frequency slope of the log is about -s. Each event's user is then
drawn in proportion to how well the item fits that user's hidden tastes (category, colour, style, price band,
gender) times the user's activity level. Users with similar tastes therefore share items: the collaborative
signal a recommender can learn. Everything is vectorised (1M events in seconds).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from modules.data.catalog import vocab

EVENTS = ["view", "click", "add_to_cart", "purchase"]
_WOMEN_ONLY = {"dresses": 0.03, "handbags": 0.08}  # relative interest of male users in these categories


def user_id(index: int) -> str:
    return f"u_{index + 1:05d}"


def _favourites(rng: np.random.Generator, n: int, k_lo: int, k_hi: int, base_p: np.ndarray,
                floor: float) -> np.ndarray:
    """(n, len(base_p)) preference rows: a few favourites with gamma weights plus a small floor, rows sum to 1."""
    m = base_p.size
    pref = np.full((n, m), floor, dtype=np.float64)
    ks = rng.integers(min(k_lo, m), min(k_hi, m) + 1, size=n)  # never more favourites than options
    keys = rng.random((n, m)) ** (1.0 / base_p)  # weighted sampling without replacement (Efraimidis-Spirakis)
    order = np.argsort(-keys, axis=1)
    w = rng.gamma(2.0, 1.0, size=(n, m))
    for j in range(int(ks.max())):
        rows = np.flatnonzero(ks > j)
        pref[rows, order[rows, j]] += w[rows, j]
    return pref / pref.sum(axis=1, keepdims=True)


def sample_users(n_users: int, categories: list[str], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Latent tastes per user: category/colour/style preference rows, price band centre, gender, activity."""
    gender = np.where(rng.random(n_users) < 0.52, "women", "men").astype(object)
    cat_base = np.ones(len(categories))
    cat_pref = _favourites(rng, n_users, 1, 3, cat_base, 0.03)
    men = gender == "men"
    for c, factor in _WOMEN_ONLY.items():
        if c in categories:
            cat_pref[men, categories.index(c)] *= factor
    cat_pref /= cat_pref.sum(axis=1, keepdims=True)
    color_base = np.asarray([vocab.DEFAULT_COLOR_WEIGHTS[c] for c in vocab.COLOR_NAMES])
    color_pref = _favourites(rng, n_users, 2, 3, color_base / color_base.sum(), 0.02)
    style_pref = _favourites(rng, n_users, 1, 2, np.ones(len(vocab.STYLES)) / len(vocab.STYLES), 0.04)
    return {
        "user_id": np.asarray([user_id(i) for i in range(n_users)], dtype=object),
        "gender": gender,
        "cat_pref": cat_pref,
        "color_pref": color_pref,
        "style_pref": style_pref,
        "price_center": rng.beta(2.0, 2.0, size=n_users),
        "activity": rng.lognormal(0.0, 0.8, size=n_users),
    }


def users_frame(users: dict[str, np.ndarray], categories: list[str]) -> pd.DataFrame:
    """truth_users.csv: top tastes as '|'-joined names plus the price band and activity."""
    def top(pref: np.ndarray, names: list[str], k: int) -> list[str]:
        order = np.argsort(-pref, axis=1)[:, :k]
        return ["|".join(names[j] for j in row if pref[i, j] > 0.1) for i, row in enumerate(order)]

    return pd.DataFrame({
        "user_id": users["user_id"],
        "gender": users["gender"],
        "fav_categories": top(users["cat_pref"], categories, 3),
        "fav_colors": top(users["color_pref"], vocab.COLOR_NAMES, 3),
        "fav_styles": top(users["style_pref"], vocab.STYLES, 2),
        "price_center": users["price_center"].round(4),
        "activity": users["activity"].round(4),
    })


def zipf_probabilities(n_items: int, exponent: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(popularity rank per item (1 = most popular), probability per item) with p ∝ rank**-exponent."""
    ranks = rng.permutation(n_items) + 1
    w = ranks.astype(np.float64) ** (-float(exponent))
    return ranks, w / w.sum()


def _choose_users(users: dict[str, np.ndarray], cat_idx: np.ndarray, col_idx: np.ndarray, sty_idx: np.ndarray,
                  price_pct: np.ndarray, item_gender: np.ndarray, gen: dict,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The user of each interaction (by item category x colour bucket: candidates drawn by category and colour taste
    and activity, then one picked by style, price band and gender fit) and how well the item fits that user (0..1)."""
    n = len(cat_idx)
    k = int(gen["user_candidates"])
    band = float(gen["price_band_width"])
    user_idx = np.empty(n, dtype=np.int64)
    match = np.empty(n, dtype=np.float64)
    bucket = cat_idx * len(vocab.COLOR_NAMES) + col_idx
    order = np.argsort(bucket, kind="stable")
    bounds = np.flatnonzero(np.diff(bucket[order])) + 1
    for rows in np.split(order, bounds):
        if rows.size == 0:
            continue
        c, col = cat_idx[rows[0]], col_idx[rows[0]]
        # stage 1: category x colour taste x activity
        w = users["activity"] * users["cat_pref"][:, c] * users["color_pref"][:, col]
        cdf = np.cumsum(w)
        cand = np.searchsorted(cdf, rng.random((rows.size, k)) * cdf[-1], side="right")
        cand = np.minimum(cand, cdf.size - 1)
        # stage 2: among k candidates, prefer style, price band and gender fit
        sty = users["style_pref"][cand, sty_idx[rows][:, None]]
        price_fit = np.exp(-0.5 * ((users["price_center"][cand] - price_pct[rows][:, None]) / band) ** 2)
        g = item_gender[rows][:, None]
        gender_fit = np.where((g == "unisex") | (users["gender"][cand] == g), 1.0, 0.15)
        score = sty * price_fit * gender_fit
        pick_cdf = np.cumsum(score, axis=1)
        pick = (pick_cdf < rng.random(rows.size)[:, None] * pick_cdf[:, -1:]).sum(axis=1)
        pick = np.minimum(pick, k - 1)
        chosen = cand[np.arange(rows.size), pick]
        user_idx[rows] = chosen
        style_max = users["style_pref"][chosen].max(axis=1)
        match[rows] = (users["style_pref"][chosen, sty_idx[rows]] / style_max) * price_fit[np.arange(rows.size), pick]
    return user_idx, match


def sample_interactions(items: pd.DataFrame, users: dict[str, np.ndarray], categories: list[str],
                        n_interactions: int, gen: dict, rng: np.random.Generator,
                        start_ts: int, cutoff_ts: int, end_ts: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Return (interactions sorted by ts, popularity rank per item).

    ``items`` needs category, color, style, gender, price_pct, created_at, is_new. New SKUs (created at or after
    the cutoff) only get events at or after their creation time, hence none in the training window, and each
    gets at least one event so cold-start evaluation has something to find.
    """
    n_items = len(items)
    ranks, p = zipf_probabilities(n_items, float(gen["zipf_exponent"]), rng)
    is_new = items["is_new"].to_numpy(dtype=bool)
    floor = is_new.astype(np.int64) if n_interactions >= int(is_new.sum()) else np.zeros(n_items, np.int64)
    counts = rng.multinomial(n_interactions - int(floor.sum()), p) + floor
    item_idx = np.repeat(np.arange(n_items), counts)
    n = item_idx.size

    cat_idx = items["category"].map({c: i for i, c in enumerate(categories)}).to_numpy()[item_idx]
    col_idx = items["color"].map({c: i for i, c in enumerate(vocab.COLOR_NAMES)}).to_numpy()[item_idx]
    sty_idx = items["style"].map({s: i for i, s in enumerate(vocab.STYLES)}).to_numpy()[item_idx]
    price_pct = items["price_pct"].to_numpy(dtype=np.float64)[item_idx]
    item_gender = items["gender"].to_numpy()[item_idx]

    user_idx, match = _choose_users(users, cat_idx, col_idx, sty_idx, price_pct, item_gender, gen, rng)

    events = _sample_events(match, gen, rng)
    created = items["created_at"].to_numpy(dtype=np.int64)[item_idx]
    lo = np.maximum(created, start_ts)
    ts = lo + np.floor(rng.random(n) * (end_ts - lo)).astype(np.int64)

    df = pd.DataFrame({
        "user_id": users["user_id"][user_idx],
        "item_id": items["item_id"].to_numpy()[item_idx],
        "event": np.asarray(EVENTS, dtype=object)[events],
        "ts": ts,
    })
    df = df.sort_values(["ts", "user_id", "item_id"], kind="stable").reset_index(drop=True)
    if ((df["ts"] < cutoff_ts) & df["item_id"].isin(items.loc[is_new, "item_id"])).any():
        raise RuntimeError("internal error: a new SKU got an interaction before the cutoff")
    return df, ranks


def _sample_events(match: np.ndarray, gen: dict, rng: np.random.Generator) -> np.ndarray:
    """Event type per interaction: deeper funnel events are likelier when the item fits the user (match in 0..1)."""
    mix = gen["event_mix"]
    unknown = set(mix) - set(EVENTS)
    if unknown:
        raise ValueError(f"generate.event_mix has unknown events {sorted(unknown)}; expected {EVENTS}")
    base = np.asarray([float(mix.get(e, 0.0)) for e in EVENTS])
    boost = 0.4 + 1.2 * match
    boost = (boost / boost.mean())[:, None]  # renormalised: the overall mix stays at `event_mix`
    probs = np.concatenate([np.zeros((match.size, 1)), base[None, 1:] * boost], axis=1)
    probs[:, 0] = np.clip(1.0 - probs[:, 1:].sum(axis=1), 0.05, None)
    cdf = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    return np.minimum((cdf < rng.random(match.size)[:, None]).sum(axis=1), len(EVENTS) - 1)
