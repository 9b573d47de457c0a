"""Stage 7, respond: the ``SearchResponse`` -- the top ``top_k`` results with their explanation, the parsed intents
and the ``low_confidence`` flag (best dense text cosine below the calibrated threshold)."""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from modules.search.state import EngineState


@dataclass
class Result:
    item_id: str
    score: float
    explain: dict[str, float | None] = field(default_factory=dict)


@dataclass
class SearchResponse:
    results: list[Result]
    low_confidence: bool
    intents: dict
    latency_ms: float
    retriever: str

    @property
    def item_ids(self) -> list[str]:
        return [r.item_id for r in self.results]


def elapsed_ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def filled_explain(state: EngineState, item_id: str) -> dict[str, Any]:
    """``{"filled": {column: {"value", "confidence"}}}`` for an item whose attributes were learned, else {}."""
    filled = state.filled or {}
    return {"filled": filled[item_id]} if item_id in filled else {}


def same_photo_explain(same_photo: np.ndarray | None, i: int) -> dict[str, float]:
    """``{"same_photo": distance}`` for a candidate promoted as the query's own photo, else {}."""
    if same_photo is None or not np.isfinite(same_photo[i]):
        return {}
    return {"same_photo": float(same_photo[i])}


def is_low_confidence(state: EngineState, confidence: float | None) -> bool:
    return (state.low_conf_threshold is not None and confidence is not None
            and confidence < state.low_conf_threshold)


def hybrid_response(state: EngineState, feats: dict[str, np.ndarray], reranker_scores: np.ndarray | None,
                    intents: dict, qctx: Mapping[str, Any], top_k: int, retriever: str, t0: float,
                    lexical_ran: bool, same_photo: np.ndarray | None = None) -> SearchResponse:
    """The response of a hybrid query from its (re-ranked) candidates. ``same_photo``: each candidate's fingerprint
    distance where its photo is the query photo (NaN elsewhere; ``modules.search.same_photo``), shown as
    ``explain["same_photo"]``."""
    n = len(feats["row"])
    two_tower_ran = bool(qctx.get("context", {}).get("two_tower"))
    dense = np.maximum(np.maximum(feats["dense_text"], feats["dense_image"]), feats["dense_fused"])
    results = [Result(item_id=str(feats["item_id"][i]),
                      score=float(feats["reranker"][i] if reranker_scores is not None else feats["score"][i]),
                      explain={"lexical": float(feats["bm25"][i]) if lexical_ran else None,
                               "dense": float(dense[i]),
                               "two_tower": float(feats["two_tower"][i]) if two_tower_ran else None,
                               "reranker": float(feats["reranker"][i]) if reranker_scores is not None else None,
                               "rrf": float(feats["rrf"][i]), "pre_rerank": float(feats["score"][i])}
                      | filled_explain(state, str(feats["item_id"][i])) | same_photo_explain(same_photo, i))
               for i in range(min(top_k, n))]
    confidence = float(feats["dense_text"].max()) if qctx.get("query") and n else None
    return SearchResponse(results=results, low_confidence=is_low_confidence(state, confidence), intents=intents,
                          latency_ms=elapsed_ms(t0), retriever=retriever)


def single_response(state: EngineState, vals: np.ndarray, rows: np.ndarray, explain_key: str,
                    confidence: float | None, intents: dict, t0: float, retriever: str) -> SearchResponse:
    """The response of a single retriever (a baseline) or of ``similar``: scores as they come, no re-ranking."""
    results = [Result(str(state.row_ids[r]), float(v),
                      {"lexical": None, "dense": None, "two_tower": None, "reranker": None} | {explain_key: float(v)})
               for v, r in zip(vals, rows, strict=True)]
    return SearchResponse(results, is_low_confidence(state, confidence), intents, elapsed_ms(t0), retriever)
