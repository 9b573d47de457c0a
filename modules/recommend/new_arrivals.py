"""New arrivals: which items are new, and a top-k list that keeps places for them (small functions over arrays).

Used by ``HybridRecommender.recommend`` (``recommend.hybrid.new_arrival_slots``) and by the offline evaluation, which
measures what the slots buy in new-SKU recall and cost in warm NDCG.
"""
from __future__ import annotations

import numpy as np

DAY_S = 86_400


def new_arrival_index(counts: np.ndarray, created_at: np.ndarray, days: float) -> np.ndarray:
    """Rows of the items with no training interactions created within ``days`` of the newest item (every item
    without interactions when the catalog has no creation times)."""
    fresh = np.asarray(counts) == 0
    created = np.asarray(created_at, dtype=np.int64)
    if len(created) and created.max() > 0:
        fresh &= created >= created.max() - int(days * DAY_S)
    return np.flatnonzero(fresh)


def with_new_arrivals(top: np.ndarray, scores: np.ndarray, new_idx: np.ndarray, exclude: np.ndarray, slots: int
                      ) -> np.ndarray:
    """``top`` (item rows, best first) with its last places given to the best-scored new arrivals, so that at least
    ``slots`` of them are in the list (fewer when fewer are left to recommend)."""
    is_new = np.isin(top, new_idx)
    need = min(slots, len(top)) - int(is_new.sum())
    if need <= 0:
        return top
    pool = np.setdiff1d(new_idx, np.union1d(top, exclude))
    pool = pool[np.isfinite(scores[pool])]
    best = pool[np.argsort(-scores[pool], kind="stable")[:need]]
    drop = np.flatnonzero(~is_new)[::-1][: len(best)]          # the lowest-placed warm items make room
    return np.concatenate([np.delete(top, drop), best])
