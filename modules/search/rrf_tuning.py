"""The text queries' RRF list weights, tuned on the catalog itself at index build.

params.yaml's ``retrieval.rrf_weights`` were chosen on the synthetic catalog. A real catalog can need another
balance: on 300 products of the fashion sample, whose queries are words of the titles, BM25 alone beat the hybrid
(NDCG@10 0.818 vs 0.748). :func:`tune_rrf_weights` starts from params.yaml's weights and moves one list's weight at a
time through ``retrieval.rrf_tuning.values`` (coordinate ascent, ``rounds`` passes), keeping a move only when it
raises the mean NDCG@10 of the hybrid order (no re-ranker) by more than ``min_gain``. A list that only some queries
have (``color``: queries with a colour intent) is tuned only when at least ``min_queries`` of them have it; on the
300-product slice 10 of 42 queries had one, and the weight they chose (0) would have switched the colour list off
for every colour query.

The queries are the TRAIN text queries that the learned fusion did not train on (``fusion.ranker_queries``, the
re-ranker's share), so the weights are not chosen on the scores of memorised pairs, and never on EVAL queries.
Each query's candidate lists are retrieved once; a weight setting only re-fuses them (``rrf.rrf_arrays``) and
re-scores them (``features.hybrid_score``): the whole search took 8 s of the 5K benchmark's build (248 queries,
shared CPUs) and 7 s at 100K items (300 queries, ``bench.rrf_tuning``).
"""
from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modules.evaluation.metrics import ndcg_at_k
from modules.search.encode import clean_query
from modules.search.engine import retrieve_stage
from modules.search.features import hybrid_score, intent_columns
from modules.search.query import Intents
from modules.search.rrf import rrf_arrays
from modules.search.state import EngineState

log = logging.getLogger(__name__)


@dataclass
class FusedQuery:
    """One query's candidate lists and what scores its candidates besides RRF, retrieved once."""

    lists: dict[str, np.ndarray]
    intents: Intents
    intent_cols: dict[str, np.ndarray]
    relevance: Mapping[str, float]


def fused_query(state: EngineState, text: str, relevance: Mapping[str, float]) -> FusedQuery | None:
    """Stages 1-3 of a text query (``engine.retrieve_stage``), or None when no list returned a candidate."""
    intents, _, _, retrieved = retrieve_stage(state, clean_query(text, state.retrieval.max_query_chars), None, 0.0,
                                              None, False)
    rows, _ = rrf_arrays(retrieved.lists, state.retrieval.rrf_k)
    if not len(rows):
        return None
    return FusedQuery(retrieved.lists, intents, intent_columns(state, rows, intents), relevance)


def hybrid_top(state: EngineState, q: FusedQuery, weights: Mapping[str, float], k: int = 10) -> list[str]:
    """The item ids of the query's best ``k`` candidates by hybrid score under ``weights`` (the order a search
    without the re-ranker returns; ties: lower row)."""
    rows, rrf = rrf_arrays(q.lists, state.retrieval.rrf_k, weights)
    if not rrf.max() > 0:
        return []
    score = hybrid_score(rrf, q.intent_cols, q.intents, state.retrieval.intent_boost)
    order = np.lexsort((rows, -score))[:k]
    return [str(i) for i in state.row_ids[rows[order]]]


def mean_ndcg(state: EngineState, queries: Sequence[FusedQuery], weights: Mapping[str, float]) -> float:
    return float(np.mean([ndcg_at_k(hybrid_top(state, q, weights), q.relevance) for q in queries]))


def tuning_queries(train_queries: Sequence[Mapping[str, Any]], params: Mapping[str, Any], seed: int, limit: int
                   ) -> list[dict]:
    """The TRAIN text queries the weights may be tuned on (the re-ranker's share: not fitted by the learned fusion),
    a seeded sample of at most ``limit``."""
    from modules.search.fusion import ranker_queries

    texts = [q for q in ranker_queries(train_queries, params.get("fusion"), seed)
             if q.get("split", "train") == "train" and q.get("kind", "text") == "text"
             and str(q.get("text") or "").strip() and q.get("relevance")]
    if len(texts) > limit:
        pick = np.sort(np.random.default_rng(seed).choice(len(texts), size=limit, replace=False))
        texts = [texts[i] for i in pick]
    return texts


def tune_rrf_weights(state: EngineState, train_queries: Sequence[Mapping[str, Any]], params: Mapping[str, Any],
                     seed: int) -> dict[str, Any]:
    """Tune the text queries' RRF list weights (see the module docstring) and set them on ``state``.

    Returns a report, ``{"weights", "start", "ndcg_at_10": {"start", "tuned"}, "queries", "tuned_lists"}``, or
    ``{"skipped": why}`` when tuning is off or there are fewer than ``min_queries`` usable queries (params.yaml's
    weights stay)."""
    cfg = state.retrieval.rrf_tuning
    if not cfg.enabled:
        return {"skipped": "retrieval.rrf_tuning.enabled is false"}
    chosen = tuning_queries(train_queries, params, seed, cfg.max_queries)
    fused = [f for f in (fused_query(state, str(q["text"]), q["relevance"]) for q in chosen) if f is not None]
    if len(fused) < cfg.min_queries:
        return {"skipped": f"{len(fused)} held-out TRAIN text queries (< min_queries {cfg.min_queries})"}
    present = Counter(name for f in fused for name in f.lists)
    names = sorted(name for name, n in present.items() if n >= cfg.min_queries)  # e.g. "color": colour intents only
    start = {name: float(state.retrieval.rrf_weights.get(name, 1.0)) for name in sorted(present)}
    weights, best = dict(start), mean_ndcg(state, fused, start)
    first = best
    for _ in range(cfg.rounds):
        moved = False
        for name in names:
            for value in cfg.values:
                trial = {**weights, name: float(value)}
                if trial == weights or not any(trial.values()):
                    continue
                score = mean_ndcg(state, fused, trial)
                if score > best + cfg.min_gain:
                    weights, best, moved = trial, score, True
        if not moved:
            break
    report = {"weights": weights, "start": start, "queries": len(fused), "tuned_lists": names,
              "ndcg_at_10": {"start": round(first, 4), "tuned": round(best, 4)}}
    set_text_weights(state, weights, report)
    log.info("RRF weights tuned on %d held-out TRAIN text queries: %s -> %s (NDCG@10 %.4f -> %.4f)", len(fused),
             start, weights, first, best)
    return report


def set_text_weights(state: EngineState, weights: Mapping[str, float],
                     report: Mapping[str, Any] | None = None) -> None:
    """Make ``weights`` the engine's text-query RRF weights (its settings and params) and keep ``report`` (None:
    the weights were not tuned), which ``persistence`` saves as ``rrf_tuning.json`` and applies again at load
    (``persistence.tuned_retrieval``)."""
    state.params["retrieval"] = {**state.params["retrieval"], "rrf_weights": dict(weights)}
    state.retrieval = dataclasses.replace(state.retrieval, rrf_weights=dict(weights))
    state.rrf_tuning = None if report is None else dict(report)
