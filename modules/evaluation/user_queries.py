"""User-issued search queries built from the interaction log, for training and measuring personalised search.

Nothing here knows how the catalog was made: a query is read off the catalog columns of an item a user touched
after the training cut-off, and judged by what that same user did after the cut-off.

For a user with at least ``min_history`` events before ``cutoff_ts`` (so the two-tower has a history to embed), each
later event on an item ``i`` is an *anchor*: the query is ``i``'s category (``_`` read as a space), with probability
``extra_prob`` preceded by the value of one more column drawn from ``extra_columns`` (``"women dresses"``,
``"Urban Thread dresses"``). Its relevance holds every item the user touched after the cut-off whose columns match
the query (same category, and same extra value when there is one), graded by the best event on it
(``grades``: e.g. view 1 ... purchase 3). A user's queries are distinct texts, at most ``max_per_user``.

Users, not queries, are split TRAIN/EVAL (``eval_fraction``, seeded), so an EVAL query's user never taught the
ranker anything. Each query is a ``queries.jsonl``-like record: ``qid``, ``text``, ``kind`` "text", ``split``,
``relevance``, plus ``user_id`` and ``source`` "user".
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from modules.config import param_seed
from modules.settings import UserQuerySettings, load_section

SOURCE = "user"


def user_query_settings(params: Mapping[str, Any] | None = None) -> UserQuerySettings:
    """``ranking.user_queries`` of ``params`` (the whole params dict) over params.yaml's."""
    ranking = (params or {}).get("ranking", {}) if params is not None else {}
    return load_section("ranking", ranking).user_queries


def _text(value: Any) -> str:
    return " ".join(str(value).replace("_", " ").split())


def _best_grades(events: pd.DataFrame, grades: Mapping[str, int]) -> dict[str, int]:
    """item_id -> the best grade of the user's events on it (unknown event types grade 0 and are left out)."""
    g = events["event"].map(lambda e: int(grades.get(str(e), 0)))
    best = g.groupby(events["item_id"].astype(str).to_numpy()).max()
    return {str(i): int(v) for i, v in best.items() if v > 0}


def _user_queries(user: str, later: pd.DataFrame, items: pd.DataFrame, s: UserQuerySettings,
                  rng: np.random.Generator) -> list[dict[str, Any]]:
    """The queries of one user from their events after the cut-off (``later``, oldest first)."""
    graded = _best_grades(later, s.grades)
    touched = items.loc[items.index.intersection(list(graded))]
    anchors = [str(i) for i in dict.fromkeys(later["item_id"].astype(str)) if str(i) in touched.index]
    order = rng.permutation(len(anchors))
    extra_cols = [c for c in s.extra_columns if c in items.columns]
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for j in order:
        anchor = touched.loc[anchors[j]]
        match = touched["category"].astype(str) == str(anchor["category"])
        text = _text(anchor["category"])
        if extra_cols and rng.random() < s.extra_prob:
            col = extra_cols[int(rng.integers(len(extra_cols)))]
            if pd.notna(anchor[col]) and str(anchor[col]).strip():
                match &= touched[col].astype(str) == str(anchor[col])
                text = f"{_text(anchor[col])} {text}"
        if text in seen or not text:
            continue
        seen.add(text)
        out.append({"text": text, "kind": "text", "user_id": user, "source": SOURCE,
                    "relevance": {str(i): graded[str(i)] for i in touched.index[match.to_numpy()]}})
        if len(out) >= s.max_per_user:
            break
    return out


def build_user_queries(interactions: pd.DataFrame, items: pd.DataFrame, cutoff_ts: int,
                       params: Mapping[str, Any] | None = None, seed: int | None = None) -> list[dict[str, Any]]:
    """TRAIN and EVAL user-issued queries (see the module docstring), in a seeded order; qids ``uq_<user>_<n>``.

    ``interactions``: user_id, item_id, event, ts (the whole log: before and after ``cutoff_ts``); ``items``: at
    least item_id and category. Events on items the catalog does not hold are ignored. TRAIN queries are capped
    at ``max_train`` (a seeded sample); EVAL queries are all kept.
    """
    s = user_query_settings(params)
    rng = np.random.default_rng(param_seed(params) if seed is None else seed)
    table = items.assign(item_id=items["item_id"].astype(str)).drop_duplicates("item_id").set_index("item_id")
    inter = interactions.assign(user_id=interactions["user_id"].astype(str),
                                item_id=interactions["item_id"].astype(str))
    inter = inter[inter["item_id"].isin(table.index)].sort_values(["user_id", "ts"], kind="stable")
    before = inter[inter["ts"] < int(cutoff_ts)]["user_id"].value_counts()
    users = sorted(u for u, n in before.items() if n >= s.min_history)
    later = inter[(inter["ts"] >= int(cutoff_ts)) & inter["user_id"].isin(users)]
    eval_users = set(rng.choice(users, size=int(round(len(users) * s.eval_fraction)), replace=False).tolist()) \
        if users else set()
    train: list[dict[str, Any]] = []
    evaluation: list[dict[str, Any]] = []
    for user, events in later.groupby("user_id", sort=True):
        split = "eval" if user in eval_users else "train"
        for n, q in enumerate(_user_queries(str(user), events, table, s, rng)):
            (evaluation if split == "eval" else train).append({"qid": f"uq_{user}_{n}", "split": split, **q})
    if len(train) > s.max_train:
        keep = sorted(rng.choice(len(train), size=s.max_train, replace=False).tolist())
        train = [train[i] for i in keep]
    return train + evaluation


def personalised_queries(engine: Any, data_dir: str, two_tower_dir: str, params: Mapping[str, Any] | None = None,
                         seed: int | None = None, tower: Any = None) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The user-issued queries of ``data_dir`` (TRAIN and EVAL) and, per qid, the engine context that carries the
    user's two-tower scores: the user embedded from the training window (what the pushed bundle's snapshot holds),
    the items from the engine's catalog. ``tower``: a ready ``UserTower`` (else built from ``two_tower_dir``).
    ``([], {})`` when the catalog has no interactions or no cut-off."""
    from modules.data.data_io import load_interactions, load_items, read_cutoff, split_interactions
    from modules.search.personalise import UserTower, query_contexts, snapshot_histories

    cutoff = read_cutoff(data_dir)
    interactions = load_interactions(data_dir)
    if cutoff is None or interactions.empty:
        return [], {}
    queries = build_user_queries(interactions, load_items(data_dir), cutoff, params, seed)
    tower = tower if tower is not None else UserTower.from_engine(engine, two_tower_dir)
    before, _ = split_interactions(interactions, cutoff)
    return queries, query_contexts(tower, queries, snapshot_histories(before))
