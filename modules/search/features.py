"""Stage 5, features: one row per fused candidate with the ``RANK_FEATURES`` the re-ranker reads (and its training
data is built from), and the hybrid score: RRF normalised to [0, 1] plus ``retrieval.intent_boost`` per matched
intent (category, colour, pattern, gender, price, brand).

Candidates travel as columns of equal length (numpy arrays rather than a DataFrame: at serving sizes the DataFrame
bookkeeping cost more than the retrieval it described).
"""
from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from modules.search.encode import QueryVectors
from modules.search.query import Intents
from modules.search.retrieve import Retrieved

if TYPE_CHECKING:
    from modules.search.state import EngineState

# Per-candidate features handed to the re-ranker (and built by ``candidate_features`` for its training data).
RANK_FEATURES: list[str] = [
    "bm25", "tfidf", "dense_text", "dense_image", "dense_fused", "rrf", "two_tower", "category_match",
    "color_match", "pattern_match", "gender_match", "price", "price_in_range", "popularity", "is_cold", "color_sim",
    "brand_match", "pre_rerank", "has_text", "has_image",
]


# The candidate feature that carries each intent a query can express (``Intents`` field -> feature).
INTENT_FEATURES: dict[str, str] = {
    "category": "category_match", "color": "color_match", "pattern": "pattern_match", "gender": "gender_match",
    "brand": "brand_match", "price_min": "price_in_range", "price_max": "price_in_range",
}


def expressed_intent_features(intents: Mapping[str, Any]) -> set[str]:
    """The features of the intents a query expressed (``Intents.to_dict()``)."""
    return {feat for field, feat in INTENT_FEATURES.items() if intents.get(field) is not None}


def query_kind(has_text: bool, has_image: bool) -> str:
    """``text``, ``image`` or ``composed`` (photo + text): the re-ranker is gated per kind."""
    return "composed" if has_text and has_image else ("image" if has_image else "text")


def take(columns: Mapping[str, np.ndarray], order: np.ndarray) -> dict[str, np.ndarray]:
    """Every column reordered by ``order``."""
    return {name: values[order] for name, values in columns.items()}


def empty_candidates() -> dict[str, np.ndarray]:
    empty = {c: np.zeros(0, np.float64) for c in ("row", "score", *RANK_FEATURES)}
    return {**empty, "item_id": np.zeros(0, object), "row": np.zeros(0, dtype=np.int64)}


class ItemMatches:
    """Per-item intent matches over the whole catalog (one array per colour / pattern asked for), so a query's
    candidate columns are one fancy-indexing pass instead of a Python loop over its candidates. The rows of every
    colour and pattern come from one pass over the catalog (an inverted index, built on first use or by ``warm``:
    at 100K items a per-colour pass over every row cost ~30 ms on the first query asking for that colour).
    Valid while the state's per-row lists are the same objects (``EngineState.refresh`` replaces them whenever the
    catalog changes)."""

    def __init__(self, state: EngineState) -> None:
        self.sources = (state.patterns, state.title_colors, state.item_colors)
        self.n_rows = state.n_rows
        self.pattern: dict[str, np.ndarray] = {}
        self.color: dict[str, np.ndarray] = {}
        self._pattern_rows: dict[str, list[int]] | None = None
        self._color_rows: dict[str, list[int]] | None = None

    def valid_for(self, state: EngineState) -> bool:
        return (self.n_rows == state.n_rows and len(state.item_colors) == self.n_rows
                and all(a is b for a, b in zip(self.sources, (state.patterns, state.title_colors, state.item_colors),
                                               strict=True)))

    def warm(self, state: EngineState) -> None:
        """Build both inverted indexes now (serving calls this when a bundle loads)."""
        self._rows_of_color(state)
        self._rows_of_pattern(state)

    def _rows_of_pattern(self, state: EngineState) -> dict[str, list[int]]:
        if self._pattern_rows is None:
            index: dict[str, list[int]] = {}
            for r, found in enumerate(state.patterns):
                for p in found:
                    index.setdefault(p, []).append(r)
            self._pattern_rows = index
        return self._pattern_rows

    def _rows_of_color(self, state: EngineState) -> dict[str, list[int]]:
        """Colour -> rows whose title colours hold it or whose image's dominant colour is it (``filters.color_match``
        row by row), ascending."""
        if self._color_rows is None:
            index: dict[str, set[int]] = {}
            for r, (in_title, dominant) in enumerate(zip(state.title_colors, state.item_colors, strict=True)):
                for c in in_title:
                    index.setdefault(c, set()).add(r)
                if dominant:
                    index.setdefault(dominant, set()).add(r)
            self._color_rows = {c: sorted(rows) for c, rows in index.items()}
        return self._color_rows

    def _flags(self, rows: list[int]) -> np.ndarray:
        out = np.zeros(self.n_rows, np.float32)
        out[np.asarray(rows, dtype=np.int64)] = 1.0
        return out

    def pattern_match(self, state: EngineState, pattern: str) -> np.ndarray:
        """float32 per row: 1.0 where ``pattern`` is among the row's patterns."""
        if pattern not in self.pattern:
            self.pattern[pattern] = self._flags(self._rows_of_pattern(state).get(pattern, []))
        return self.pattern[pattern]

    def color_match(self, state: EngineState, color: str) -> np.ndarray:
        """``filters.color_match`` of every row (it is row-wise), float32."""
        if color not in self.color:
            self.color[color] = (self._flags(self._rows_of_color(state).get(color, [])) if color
                                 else np.zeros(self.n_rows, np.float32))
        return self.color[color]


_MATCHES: dict[int, ItemMatches] = {}   # id(state) -> its matches; an entry leaves with its state (weakref)


def item_matches(state: EngineState) -> ItemMatches:
    """The state's ``ItemMatches``, rebuilt when the catalog changed."""
    key = id(state)
    matches = _MATCHES.get(key)
    if matches is None or not matches.valid_for(state):
        if matches is None:
            weakref.finalize(state, _MATCHES.pop, key, None)
        matches = _MATCHES[key] = ItemMatches(state)
    return matches


def intent_columns(state: EngineState, rows: np.ndarray, intents: Intents) -> dict[str, np.ndarray]:
    """Which of ``rows`` match each intent the query expressed (0 for intents it did not express), one value per
    row in every column."""
    def col(v: Any) -> np.ndarray:
        return np.full(len(rows), v, np.float64) if np.ndim(v) == 0 else np.asarray(v)

    matches = item_matches(state) if intents.color or intents.pattern else None
    price = state.price[rows]
    return {
        "category_match": col((state.cat[rows] == intents.category).astype(np.float32) if intents.category else 0.0),
        "color_match": col(matches.color_match(state, intents.color)[rows] if matches and intents.color
                           else np.zeros(len(rows), np.float32)),
        "pattern_match": col(matches.pattern_match(state, intents.pattern)[rows] if matches and intents.pattern
                             else 0.0),
        "gender_match": col(((state.gender[rows] == intents.gender) * 1.0
                             + (state.gender[rows] == "unisex") * 0.5).astype(np.float32)
                            if intents.gender else 0.0),
        "price_in_range": ((price >= (intents.price_min or 0.0))
                           & (price <= (intents.price_max if intents.price_max is not None else np.inf))
                           ).astype(np.float32),
        "brand_match": col((state.brand[rows] == intents.brand).astype(np.float32) if intents.brand else 0.0),
    }


def hybrid_score(rrf: np.ndarray, intent_cols: Mapping[str, np.ndarray], intents: Intents, intent_boost: float
                 ) -> np.ndarray:
    """RRF normalised to [0, 1] plus ``intent_boost`` per matched intent (``intent_cols``: :func:`intent_columns`).
    Soft boosts: only intents the query actually expressed count."""
    matched = np.zeros(len(rrf))
    for name, present in (("category_match", intents.category), ("color_match", intents.color),
                          ("pattern_match", intents.pattern), ("gender_match", intents.gender),
                          ("price_in_range", intents.price_min is not None or intents.price_max is not None),
                          ("brand_match", intents.brand)):
        if present:
            matched += intent_cols[name].astype(np.float64)
    return rrf / rrf.max() + intent_boost * matched


def with_kept_rows(order: np.ndarray, rows: np.ndarray, kept: np.ndarray | None, depth: int | None) -> np.ndarray:
    """``order`` (positions into ``rows``, best first) cut to ``depth``, then the positions of ``kept`` rows that the
    cut dropped appended in their ``order`` rank: a photo query's nearest catalog photos stay candidates however
    far intent boosts pushed them down. ``rows`` ascending (``rrf.fuse_lists``); kept rows not in it are ignored."""
    if depth is None or len(order) <= depth:
        return order
    cut = order[:depth]
    if kept is None or not len(kept):
        return cut
    pos = np.searchsorted(rows, kept)
    pos = pos[(pos < len(rows)) & (rows[np.minimum(pos, len(rows) - 1)] == kept)]
    dropped = np.isin(order[depth:], pos)
    return np.concatenate([cut, order[depth:][dropped]])


def candidate_columns(state: EngineState, text: str | None, retrieval_text: str, has_image: bool,
                      vec: QueryVectors, intents: Intents, retrieved: Retrieved, fused: tuple[np.ndarray, np.ndarray],
                      context: Mapping[str, Any] | None, depth: int | None) -> dict[str, np.ndarray]:
    """The fused candidates, best hybrid score first (ties: lower row), as columns: ``item_id``, ``row``,
    ``RANK_FEATURES`` and ``score`` (the pre-rerank score). ``fused``: ``rrf.fuse_lists``' rows (ascending,
    non-empty) and their RRF scores. ``depth``: only the best ``depth`` by hybrid score are kept, and the
    per-candidate features (TF-IDF, exact dense scores, ...) are computed for those alone (None: every one)."""
    rows, rrf_scores = fused
    intents_all = intent_columns(state, rows, intents)
    score = hybrid_score(rrf_scores, intents_all, intents, float(state.hp["intent_boost"]))
    if retrieved.photo_category:   # a photo's category from its head: boosted like an intent (not a ranker feature)
        score = score + float(state.hp["intent_boost"]) * (state.cat[rows] == retrieved.photo_category)
    order = np.lexsort((rows, -score))
    nearest = retrieved.lists.get("photo") if text is None else None   # photo-only queries: the same-photo step
    order = with_kept_rows(order, rows, nearest[:state.retrieval.photo.nearest_kept] if nearest is not None else None,
                           depth)
    rows, rrf_scores, score = rows[order], rrf_scores[order], score[order]
    intent_cols = {name: values[order] for name, values in intents_all.items()}
    two_tower = (context or {}).get("two_tower") or {}
    m = len(rows)

    def col(value: Any) -> np.ndarray:  # a scalar feature broadcast to one value per candidate
        return np.full(m, value, np.float64) if np.ndim(value) == 0 else np.asarray(value)

    ids = state.row_ids[rows]
    feats: dict[str, np.ndarray] = {
        "item_id": ids,
        "row": rows,
        "bm25": retrieved.bm25[rows],
        "tfidf": state.tfidf.scores_rows(retrieval_text, rows) if text else np.zeros(m, np.float32),
        "dense_text": col(state.text_index.score(vec.text, rows) if vec.text is not None else 0.0),
        "dense_image": col(state.image_index.score(vec.image, rows) if vec.image is not None else 0.0),
        "dense_fused": col(state.fused_index.score(vec.fused, rows)),
        "rrf": rrf_scores,
        "two_tower": (np.fromiter((float(two_tower.get(i, 0.0)) for i in ids), np.float64, m) if two_tower
                      else np.zeros(m, np.float64)),
        "category_match": intent_cols["category_match"],
        "color_match": intent_cols["color_match"],
        "pattern_match": intent_cols["pattern_match"],
        "gender_match": intent_cols["gender_match"],
        "price": state.price_feature[rows],  # Transform's price_log_z (old engines: the raw price)
        "price_in_range": intent_cols["price_in_range"],
        "popularity": state.popularity[rows],
        "is_cold": ((state.popularity[rows] <= 0) | state.live_added[rows]).astype(np.float32),
        "color_sim": retrieved.color_sim_rows(state, rows),
        "brand_match": intent_cols["brand_match"],
        "has_text": col(float(bool(text))),  # query kind
        "has_image": col(float(has_image)),
    }
    feats["score"] = score
    feats["pre_rerank"] = feats["score"]  # the hybrid order the re-ranker starts from
    return feats
