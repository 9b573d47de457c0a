"""Ranking metrics for search evaluation, defined exactly as `ranx` defines them.

Every function takes a *ranked* list of item ids (best first) and a relevance dict
``{item_id: grade}``. Grades are integers; a grade >= 1 counts as relevant and grade 0 (or a
missing id) as not relevant. The definitions, checked against ``ranx.evaluate`` in
``tests/test_metrics.py``:

* ``ndcg_at_k``  Järvelin & Kekäläinen NDCG, the formulation ranx calls ``"ndcg"``: the gain of a
  document is its grade itself (not ``2**grade - 1``, which ranx calls ``"ndcg_burges"``), the
  discount is ``log2(rank + 1)``, and the ideal DCG sorts the judged grades in decreasing order.
* ``mrr``        reciprocal rank of the first relevant document within the top k (0 if none).
* ``recall_at_k``     relevant documents in the top k / all relevant documents.
* ``precision_at_k``  relevant documents in the top k / k (k, not the list length).
* ``map_at_k``   sum of precision@i at each relevant rank i <= k, divided by the number of all
  relevant documents (ranx's ``map@k``; not divided by ``min(k, R)``).

A query without any relevant document scores 0 on every metric (as in ranx); ``evaluate_run``
leaves such queries out of its means and reports how many queries it averaged.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

Relevance = Mapping[str, int | float]

METRIC_NAMES = ("ndcg", "mrr", "recall", "precision", "map")


def _relevant(relevance: Relevance) -> dict[str, float]:
    return {str(i): float(g) for i, g in relevance.items() if g >= 1}


def _check_k(k: int) -> int:
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _dedup_top(ranked: Sequence[str], k: int) -> list[str]:
    """The first k distinct ids of a ranked list (a repeated id counts once, at its first rank)."""
    seen: set[str] = set()
    out: list[str] = []
    for item in ranked:
        item = str(item)
        if item in seen:
            continue
        seen.add(item)
        out.append(item)
        if len(out) == k:
            break
    return out


def dcg_at_k(ranked: Sequence[str], relevance: Relevance, k: int = 10) -> float:
    """Discounted cumulative gain with linear gains (gain = grade)."""
    k = _check_k(k)
    rel = _relevant(relevance)
    return float(sum(rel.get(item, 0.0) / math.log2(rank + 2) for rank, item in enumerate(_dedup_top(ranked, k))))


def ndcg_at_k(ranked: Sequence[str], relevance: Relevance, k: int = 10) -> float:
    """NDCG@k with linear gains, matching ranx ``ndcg@k``."""
    k = _check_k(k)
    rel = _relevant(relevance)
    if not rel:
        return 0.0
    ideal = sorted(rel.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
    return dcg_at_k(ranked, rel, k) / idcg


def mrr(ranked: Sequence[str], relevance: Relevance, k: int | None = None) -> float:
    """Reciprocal rank of the first relevant id (within the top k when k is given)."""
    rel = _relevant(relevance)
    top = _dedup_top(ranked, _check_k(k)) if k is not None else _dedup_top(ranked, len(ranked) or 1)
    for rank, item in enumerate(top):
        if item in rel:
            return 1.0 / (rank + 1)
    return 0.0


def recall_at_k(ranked: Sequence[str], relevance: Relevance, k: int = 10) -> float:
    """Share of all relevant ids that appear in the top k."""
    k = _check_k(k)
    rel = _relevant(relevance)
    if not rel:
        return 0.0
    return sum(1 for item in _dedup_top(ranked, k) if item in rel) / len(rel)


def precision_at_k(ranked: Sequence[str], relevance: Relevance, k: int = 10) -> float:
    """Relevant ids in the top k, divided by k (a short list is not rewarded)."""
    k = _check_k(k)
    rel = _relevant(relevance)
    if not rel:
        return 0.0
    return sum(1 for item in _dedup_top(ranked, k) if item in rel) / k


def map_at_k(ranked: Sequence[str], relevance: Relevance, k: int = 10) -> float:
    """Average precision at k, normalised by the number of relevant ids (ranx ``map@k``)."""
    k = _check_k(k)
    rel = _relevant(relevance)
    if not rel:
        return 0.0
    hits = 0
    total = 0.0
    for rank, item in enumerate(_dedup_top(ranked, k)):
        if item in rel:
            hits += 1
            total += hits / (rank + 1)
    return total / len(rel)


def rank_by_score(scored: Iterable[tuple[str, float]]) -> list[str]:
    """Ids ordered by decreasing score; ties keep their input order."""
    pairs = [(str(i), float(s)) for i, s in scored]
    order = sorted(range(len(pairs)), key=lambda j: -pairs[j][1])
    return [pairs[j][0] for j in order]


def per_query_metrics(ranked: Sequence[str], relevance: Relevance, k: int = 10) -> dict[str, float]:
    """All five metrics for one query, keyed ``ndcg@k``, ``mrr``, ``recall@k``, ``precision@k``, ``map@k``."""
    return {
        f"ndcg@{k}": ndcg_at_k(ranked, relevance, k),
        "mrr": mrr(ranked, relevance, k),
        f"recall@{k}": recall_at_k(ranked, relevance, k),
        f"precision@{k}": precision_at_k(ranked, relevance, k),
        f"map@{k}": map_at_k(ranked, relevance, k),
    }


def evaluate_run(
    run: Mapping[str, Sequence[tuple[str, float]]],
    qrels: Mapping[str, Relevance],
    k: int = 10,
) -> dict[str, Any]:
    """Mean metrics of a run over the judged queries.

    ``run`` maps a query id to ``[(item_id, score), ...]`` (any order; sorted here by decreasing
    score). ``qrels`` maps a query id to ``{item_id: grade}``. Every query in ``qrels`` with at least
    one relevant id is averaged; a query missing from ``run`` scores 0. MRR is cut at k (MRR@k).
    Returns the means plus ``n_queries``.
    """
    k = _check_k(k)
    rows: list[dict[str, float]] = []
    for qid, relevance in qrels.items():
        if not _relevant(relevance):
            continue
        ranked = rank_by_score(run.get(qid, []))
        rows.append(per_query_metrics(ranked, relevance, k))
    keys = [f"ndcg@{k}", "mrr", f"recall@{k}", f"precision@{k}", f"map@{k}"]
    out: dict[str, Any] = {key: (float(np.mean([r[key] for r in rows])) if rows else 0.0) for key in keys}
    out["n_queries"] = len(rows)
    return out


def latency_summary(ms_list: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / p99 / mean of per-query latencies in milliseconds (linear-interpolated percentiles)."""
    arr = np.asarray(list(ms_list), dtype=np.float64)
    if arr.size == 0:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "mean": float("nan")}
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError("latencies must be finite and non-negative")
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "mean": float(arr.mean())}
