"""Stage 4: weighted reciprocal rank fusion of the candidate lists (rows of the engine's catalog)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from modules.settings import RetrievalSettings


def rrf_arrays(ranked_lists: Mapping[str, Sequence[int]], k: int, weights: Mapping[str, float] | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Weighted reciprocal rank fusion as arrays: ``(rows, scores)``, the distinct rows ascending (int64) and
    ``score(d) = sum over lists of w_list / (k + rank(d))`` (float64, ranks from 1).

    ``weights`` maps list names to their weight (missing names weigh 1.0; 0 drops a list's contribution but keeps
    its candidates). Plain RRF lets several weak dense lists outvote one strong lexical list; weights tuned on
    TRAIN queries (``retrieval.rrf_weights``) correct that. Each row's terms are added in list order, starting from
    0.0, so the scores equal a per-row Python sum bit for bit.
    """
    if k < 0:
        raise ValueError("rrf k must be >= 0")
    weights = weights or {}
    bad = {name: w for name, w in weights.items() if not np.isfinite(w) or w < 0}
    if bad:
        raise ValueError(f"rrf weights must be finite and >= 0, got {bad}")
    lists = [(float(weights.get(name, 1.0)), np.asarray(rows, dtype=np.int64).ravel())
             for name, rows in ranked_lists.items()]
    if not lists:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    all_rows = np.unique(np.concatenate([rows for _, rows in lists]))
    scores = np.zeros(len(all_rows), np.float64)
    for w, rows in lists:
        # np.add.at: a row listed twice in one list counts twice, as in the per-row sum
        np.add.at(scores, np.searchsorted(all_rows, rows), w / (k + np.arange(1, len(rows) + 1, dtype=np.float64)))
    return all_rows, scores


def rrf(ranked_lists: Mapping[str, Sequence[int]], k: int, weights: Mapping[str, float] | None = None
        ) -> dict[int, float]:
    """``rrf_arrays`` as a dict ``row -> score``."""
    rows, scores = rrf_arrays(ranked_lists, k, weights)
    return dict(zip(rows.tolist(), scores.tolist(), strict=True))


def fuse_lists(lists: Mapping[str, Sequence[int]], hp: RetrievalSettings, has_text: bool, has_image: bool
               ) -> tuple[np.ndarray, np.ndarray]:
    """RRF (``rrf_arrays``: rows ascending, scores) of a query's candidate lists with its kind's list weights
    (tuned on TRAIN queries of that kind): ``rrf_weights`` for text, ``photo_rrf_weights`` for photo and
    ``composed_rrf_weights`` for photo + text."""
    weights_key = "rrf_weights" if not has_image else ("photo_rrf_weights" if not has_text else "composed_rrf_weights")
    weights = dict(getattr(hp, weights_key) or {})
    return rrf_arrays(lists, k=hp.rrf_k, weights=weights)
