"""Stage 6, re-rank: the optional re-ranker hook over the candidates' ``RANK_FEATURES``, gated per query kind.

The hook is ``ranker.rerank(query_ctx, candidates_df) -> scores`` (higher is better). The production ranker is
``LambdaMARTRanker``: a LightGBM ``LGBMRanker`` (objective ``lambdarank``) trained by
``modules.search.rerank_train`` on TRAIN-split judged queries only.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import lightgbm as lgb
import numpy as np
import pandas as pd

from modules.search.features import RANK_FEATURES, expressed_intent_features, query_kind, take

MODEL_FILE = "model.txt"
FEATURES_FILE = "features.json"


class Reranker(Protocol):
    """What a re-ranker plugged into ``SearchEngine`` must provide (``LambdaMARTRanker`` below).

    ``query_ctx`` holds ``query``, ``intents`` (dict), ``retriever`` and ``filters``; ``candidates`` holds one row per
    candidate with ``item_id`` and the ``RANK_FEATURES`` columns. Returns one score per row (higher is better).
    """

    def rerank(self, query_ctx: dict[str, Any], candidates: pd.DataFrame) -> np.ndarray: ...


def checked_scores(scores: Any, n: int) -> np.ndarray:
    """A ranker's output as float64, checked for shape and finiteness, so a faulty ranker fails loudly rather than
    mis-sorting."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.shape[0] != n:
        raise ValueError(f"ranker returned {scores.shape[0]} scores for {n} candidates")
    if not np.all(np.isfinite(scores)):
        raise ValueError("ranker returned non-finite scores")
    return scores


def apply_reranker(ranker: Reranker, query_ctx: dict[str, Any], candidates: pd.DataFrame) -> np.ndarray:
    """Call the hook and check its output (``checked_scores``)."""
    return checked_scores(ranker.rerank(query_ctx, candidates), len(candidates))


def rerank_candidates(ranker: Any, feats: dict[str, np.ndarray], qctx: Mapping[str, Any], retriever: str,
                      rerank: bool = True) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """The candidates re-ordered by the ranker (ties: pre-rerank score, then row) and the ranker's scores, or the
    candidates unchanged and ``None`` when there is no ranker, ``rerank`` is off, the ranker does not apply to the
    query's kind (it did not beat the hybrid order on that kind's validation queries) or there are no candidates."""
    kind = query_kind(bool(qctx.get("query")), bool(qctx.get("has_image")))
    applies = getattr(ranker, "applies_to", None)
    if applies is not None and not applies(kind):
        rerank = False
    knows = getattr(ranker, "knows_intents", None)
    if knows is not None and not knows(kind, qctx.get("intents") or {}):
        rerank = False
    if not (rerank and ranker is not None and len(feats["row"])):
        return feats, None
    ctx = {**qctx, "retriever": retriever}
    on_columns = getattr(ranker, "rerank_columns", None)
    if on_columns is not None:   # skips building a DataFrame (it cost more than LightGBM's trees)
        scores = checked_scores(on_columns(ctx, feats), len(feats["row"]))
    else:
        scores = apply_reranker(ranker, ctx, pd.DataFrame({c: feats[c] for c in ("item_id", *RANK_FEATURES)}))
    return take({**feats, "reranker": scores}, np.lexsort((feats["row"], -feats["score"], -scores))), scores


class MissingFeatureError(ValueError):
    """Raised when a candidate frame lacks columns the ranker was trained on."""


def check_features(frame: pd.DataFrame, features: Sequence[str]) -> None:
    """Raise ``MissingFeatureError`` naming every absent column, ``ValueError`` on non-numeric ones."""
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise MissingFeatureError(
            f"candidate frame is missing ranker feature(s) {missing}; expected {list(features)}, "
            f"got {list(frame.columns)}"
        )
    bad = [f for f in features if not pd.api.types.is_numeric_dtype(frame[f]) and not pd.api.types.is_bool_dtype(frame[f])]
    if bad:
        raise ValueError(f"ranker feature(s) {bad} must be numeric or boolean")


_SINGLE_THREAD_ROWS = 5000  # rerank() predicts on one thread up to this many rows (0 = LightGBM's default)


class LambdaMARTRanker:
    """A trained LightGBM LambdaMART booster plus the feature list it expects."""

    def __init__(
        self,
        booster: lgb.Booster,
        features: Sequence[str],
        trained_qids: Iterable[str] = (),
        info: Mapping[str, Any] | None = None,
    ) -> None:
        self.booster = booster
        self.features = list(features)
        self.trained_qids = frozenset(str(q) for q in trained_qids)
        self.info = dict(info or {})

    def rerank(self, query_ctx: Any, candidates_df: pd.DataFrame) -> np.ndarray:
        """Score each candidate row (higher is better). ``query_ctx`` is accepted for the engine's hook
        signature; every query-dependent signal is already a column of ``candidates_df``."""
        if not isinstance(candidates_df, pd.DataFrame):
            raise TypeError("candidates_df must be a pandas DataFrame")
        if len(candidates_df) == 0:
            return np.zeros(0, dtype=np.float64)
        check_features(candidates_df, self.features)
        return self._predict([candidates_df[f].to_numpy(dtype=np.float32) for f in self.features])

    def rerank_columns(self, query_ctx: Any, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """``rerank`` on the engine's candidate columns (name -> one value per candidate), without a DataFrame:
        the same matrix, so the same scores."""
        missing = [f for f in self.features if f not in columns]
        if missing:
            raise MissingFeatureError(f"candidate columns lack ranker feature(s) {missing}; "
                                      f"expected {list(self.features)}, got {list(columns)}")
        values = [np.asarray(columns[f]) for f in self.features]
        bad = [f for f, v in zip(self.features, values, strict=True) if v.dtype.kind not in "biuf"]
        if bad:
            raise ValueError(f"ranker feature(s) {bad} must be numeric or boolean")
        return self._predict(values) if len(values[0]) else np.zeros(0, dtype=np.float64)

    def _predict(self, values: Sequence[np.ndarray]) -> np.ndarray:
        X = np.empty((len(values[0]), len(values)), dtype=np.float32)   # C-contiguous, one copy
        for j, v in enumerate(values):
            X[:, j] = v
        # One query's few hundred candidates: OpenMP start-up costs more than the trees, so predict on one thread.
        threads = 1 if len(X) <= _SINGLE_THREAD_ROWS else 0
        return np.asarray(self.booster.predict(X, num_threads=threads), dtype=np.float64)

    def feature_importance(self, importance_type: str = "gain") -> dict[str, float]:
        """Feature -> importance (total split gain by default), most important first."""
        values = self.booster.feature_importance(importance_type=importance_type)
        pairs = sorted(zip(self.features, values.tolist(), strict=True), key=lambda p: -p[1])
        return {f: float(v) for f, v in pairs}

    def applies_to(self, kind: str) -> bool:
        """Whether to re-rank queries of ``kind`` (text/image/composed): only kinds where the ranker beat the
        hybrid order on its validation queries (rankers trained without that check apply everywhere)."""
        kinds = self.info.get("rerank_kinds")
        return kinds is None or kind in kinds

    def knows_intents(self, kind: str, intents: Mapping[str, Any]) -> bool:
        """False when the query expresses an intent whose feature never told candidates apart within one of the
        ranker's training queries of ``kind`` (a catalog whose titles never name a colour trains no colour
        intent): trees never split on such a feature, so their order would ignore what the shopper asked for
        and the hybrid order serves instead. Rankers trained without the record know every intent."""
        seen = self.info.get("intent_features_seen", {}).get(kind)
        return seen is None or expressed_intent_features(intents) <= set(seen)

    def save(self, out_dir: str | Path) -> Path:
        """Write ``model.txt`` (the LightGBM booster) and ``features.json`` (features, qids, info)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(out / MODEL_FILE))
        meta = {"features": self.features, "trained_qids": sorted(self.trained_qids), "info": self.info}
        (out / FEATURES_FILE).write_text(json.dumps(meta, indent=2))
        return out

    @classmethod
    def load(cls, in_dir: str | Path) -> LambdaMARTRanker:
        src = Path(in_dir)
        model, feats = src / MODEL_FILE, src / FEATURES_FILE
        if not model.is_file() or not feats.is_file():
            raise FileNotFoundError(f"{src} must hold {MODEL_FILE} and {FEATURES_FILE}")
        meta = json.loads(feats.read_text())
        booster = lgb.Booster(model_file=str(model))
        if list(booster.feature_name()) != list(meta["features"]):
            raise ValueError(f"{feats} lists {meta['features']} but the booster has {booster.feature_name()}")
        return cls(booster, meta["features"], meta.get("trained_qids", []), meta.get("info", {}))
