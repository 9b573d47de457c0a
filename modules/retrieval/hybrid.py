"""Hybrid retrieval glue: reciprocal rank fusion and the re-ranker hook protocol."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd


def rrf(ranked_lists: Mapping[str, Sequence[int]], k: int = 60) -> dict[int, float]:
    """Reciprocal rank fusion: ``score(d) = sum over lists of 1 / (k + rank(d))`` with ranks starting at 1."""
    if k < 0:
        raise ValueError("rrf k must be >= 0")
    scores: dict[int, float] = {}
    for rows in ranked_lists.values():
        for rank, row in enumerate(rows, start=1):
            scores[int(row)] = scores.get(int(row), 0.0) + 1.0 / (k + rank)
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
