"""Hybrid retrieval glue: reciprocal rank fusion and the re-ranker hook protocol."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd


def rrf(ranked_lists: Mapping[str, Sequence[int]], k: int = 60, weights: Mapping[str, float] | None = None
        ) -> dict[int, float]:
    """Weighted reciprocal rank fusion: ``score(d) = sum over lists of w_list / (k + rank(d))``, ranks from 1.

    ``weights`` maps list names to their weight (missing names weigh 1.0; 0 drops a list's contribution but keeps
    its candidates). Plain RRF lets several weak dense lists outvote one strong lexical list; weights tuned on
    TRAIN queries (``retrieval.rrf_weights``) correct that.
    """
    if k < 0:
        raise ValueError("rrf k must be >= 0")
    weights = weights or {}
    bad = {name: w for name, w in weights.items() if not np.isfinite(w) or w < 0}
    if bad:
        raise ValueError(f"rrf weights must be finite and >= 0, got {bad}")
    scores: dict[int, float] = {}
    for name, rows in ranked_lists.items():
        w = float(weights.get(name, 1.0))
        for rank, row in enumerate(rows, start=1):
            scores[int(row)] = scores.get(int(row), 0.0) + w / (k + rank)
    return scores


class Reranker(Protocol):
    """What a re-ranker plugged into ``SearchEngine`` must provide (LambdaMART in ``modules.ranking``).

    ``query_ctx`` holds ``query``, ``intents`` (dict), ``retriever`` and ``filters``; ``candidates`` holds one row per
    candidate with ``item_id`` and the ``RANK_FEATURES`` columns. Returns one score per row (higher is better).
    """

    def rerank(self, query_ctx: dict[str, Any], candidates: pd.DataFrame) -> np.ndarray: ...


def apply_reranker(ranker: Reranker, query_ctx: dict[str, Any], candidates: pd.DataFrame) -> np.ndarray:
    """Call the hook and check its output shape, so a faulty ranker fails loudly rather than mis-sorting."""
    scores = np.asarray(ranker.rerank(query_ctx, candidates), dtype=np.float64).ravel()
    if scores.shape[0] != len(candidates):
        raise ValueError(f"ranker returned {scores.shape[0]} scores for {len(candidates)} candidates")
    if not np.all(np.isfinite(scores)):
        raise ValueError("ranker returned non-finite scores")
    return scores
