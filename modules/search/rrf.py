"""Stage 4: weighted reciprocal rank fusion of the candidate lists (rows of the engine's catalog)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from modules.settings import RetrievalSettings


def rrf(ranked_lists: Mapping[str, Sequence[int]], k: int, weights: Mapping[str, float] | None = None
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


def fuse_lists(lists: Mapping[str, Sequence[int]], hp: RetrievalSettings, has_text: bool, has_image: bool
               ) -> dict[int, float]:
    """RRF of a query's candidate lists with its kind's list weights (tuned on TRAIN queries of that kind):
    ``rrf_weights`` for text, ``photo_rrf_weights`` for photo and ``composed_rrf_weights`` for photo + text."""
    weights_key = "rrf_weights" if not has_image else ("photo_rrf_weights" if not has_text else "composed_rrf_weights")
    weights = dict(getattr(hp, weights_key) or {})
    return rrf(lists, k=hp.rrf_k, weights=weights)
