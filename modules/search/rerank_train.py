"""Training the LambdaMART re-ranker (``modules.search.rerank.LambdaMARTRanker``) over per-candidate features.

Training data come only from judged queries whose ``split`` is ``train``; the evaluation queries
are never seen. Inside the train split a further by-query split (``ranking.valid_fraction``) gives
the validation groups that early stopping watches (NDCG at ``ranking.eval_at``).

The ranker plugs into the search engine through the hook ``rerank(query_ctx, candidates_df)``:
the engine hands it one row per candidate with the ``RANK_FEATURES`` columns and gets one score
per row back (higher is better).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from modules.config import param_seed
from modules.search.features import INTENT_FEATURES, RANK_FEATURES, query_kind
from modules.search.rerank import LambdaMARTRanker, check_features
from modules.settings import RankingSettings, load_section


def _ranking_params(params: Mapping[str, Any] | None) -> RankingSettings:
    """The typed ``ranking:`` section: ``params`` (the whole params dict or the section itself) over params.yaml's."""
    section = None if params is None else params.get("ranking", params)
    if section is not None and not isinstance(section, Mapping):
        raise ValueError("params['ranking'] must be a mapping")
    return load_section("ranking", section)  # params.yaml fills what the caller left out


# --------------------------------------------------------------------------------------------
# Query splits
# --------------------------------------------------------------------------------------------
def split_queries(queries: Iterable[Mapping[str, Any]]) -> tuple[list[dict], list[dict]]:
    """Split judged queries by their own ``split`` field into (train, eval).

    Raises ``ValueError`` on a query without a qid, with an unknown split value, or when a qid
    appears twice (a duplicated qid could otherwise leak from one side to the other).
    """
    train: list[dict] = []
    evaluation: list[dict] = []
    seen: set[str] = set()
    for q in queries:
        qid = q.get("qid")
        if qid is None or str(qid) == "":
            raise ValueError(f"query without a qid: {dict(q)!r:.200}")
        qid = str(qid)
        if qid in seen:
            raise ValueError(f"duplicate qid {qid!r} in queries")
        seen.add(qid)
        split = q.get("split")
        if split == "train":
            train.append(dict(q))
        elif split == "eval":
            evaluation.append(dict(q))
        else:
            raise ValueError(f"query {qid!r}: split must be 'train' or 'eval', got {split!r}")
    return train, evaluation


def split_groups_for_validation(
    qids: Sequence[str], valid_fraction: float, seed: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (train_rows, valid_rows) that split rows by query id, never inside a query."""
    qids_arr = np.asarray([str(q) for q in qids])
    unique = np.array(sorted(set(qids_arr.tolist())))
    rng = np.random.default_rng(param_seed() if seed is None else seed)
    n_valid = int(round(len(unique) * valid_fraction))
    valid_set = set(rng.choice(unique, size=n_valid, replace=False).tolist()) if n_valid > 0 else set()
    valid_rows = np.array([q in valid_set for q in qids_arr], dtype=bool)
    return ~valid_rows, valid_rows


# --------------------------------------------------------------------------------------------
# Training frame
# --------------------------------------------------------------------------------------------
def graded_labels(item_ids: Sequence[str], relevance: Mapping[str, int | float]) -> np.ndarray:
    """Integer relevance grade of each candidate (0 when unjudged), clipped to 0..30 for LightGBM."""
    rel = {str(k): int(v) for k, v in relevance.items()}
    return np.clip(np.array([rel.get(str(i), 0) for i in item_ids], dtype=np.int32), 0, 30)


def _query_candidates(engine: Any, query: Mapping[str, Any], candidates_k: int | None, data_dir: str | None,
                      context: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Candidate features of one judged query through the engine's own retrieval path (``context``: the engine's
    query context, e.g. a user's ``two_tower`` scores)."""
    if context is None:
        return engine.candidate_features(query, top_k=candidates_k, data_dir=data_dir)
    return engine.candidate_features(query, top_k=candidates_k, data_dir=data_dir, context=context)


def build_training_frame(
    engine: Any,
    train_queries: Sequence[Mapping[str, Any]],
    candidates_k: int | None = None,
    data_dir: str | None = None,
    features: Sequence[str] | None = None,
    progress: bool = False,
    contexts: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Per-candidate features and graded labels of the TRAIN queries, grouped by query.

    Returns ``(X, y, groups, qids)``: ``X`` holds the engine's ``RANK_FEATURES`` columns, ``y`` the
    grades (0 = not judged relevant), ``groups`` the row count of each query in order and ``qids``
    the query id of every row. Queries whose candidates hold no relevant item carry no ranking
    signal and are skipped. A query whose ``split`` is not ``train`` raises ``ValueError``.
    ``features`` defaults to ``RANK_FEATURES``; ``progress`` draws a tqdm bar over the queries. ``contexts``:
    qid -> the engine context of that query (a user-issued query's ``two_tower`` scores,
    ``modules.search.personalise.query_contexts``); queries without one are built without context.
    """
    from tqdm import tqdm

    features = list(RANK_FEATURES if features is None else features)
    k = int(candidates_k) if candidates_k else None  # None: what serving re-ranks (``retrieval.rerank_depth``)
    frames: list[pd.DataFrame] = []
    labels: list[np.ndarray] = []
    groups: list[int] = []
    row_qids: list[str] = []
    for q in tqdm(train_queries, desc="ranker: candidate features", unit="query", disable=not progress, leave=False):
        if q.get("split") != "train":
            raise ValueError(f"query {q.get('qid')!r} is not a train query (split={q.get('split')!r})")
        cands = _query_candidates(engine, q, k, data_dir, (contexts or {}).get(str(q["qid"])))
        if cands is None or len(cands) < 2:
            continue
        y = graded_labels(cands["item_id"].astype(str).tolist(), q.get("relevance", {}))
        if y.max() <= 0:
            continue
        check_features(cands, features)
        frames.append(cands[features].reset_index(drop=True))
        labels.append(y)
        groups.append(len(cands))
        row_qids.extend([str(q["qid"])] * len(cands))
    if not frames:
        raise ValueError("no train query retrieved a relevant candidate: cannot train a ranker")
    X = pd.concat(frames, ignore_index=True).astype(np.float32)
    return X, np.concatenate(labels), np.asarray(groups, dtype=np.int64), np.asarray(row_qids)


def _groups_from_qids(qids: np.ndarray) -> np.ndarray:
    """Group sizes of contiguous runs of equal qids (LightGBM needs each query's rows together)."""
    if len(qids) == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.flatnonzero(qids[1:] != qids[:-1]) + 1
    bounds = np.concatenate([[0], change, [len(qids)]])
    return np.diff(bounds).astype(np.int64)


def _check_training_rows(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray, qids: np.ndarray | None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """``(y, qids)`` as arrays after checking that X, y, groups and qids agree (synthetic qids when none)."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError("X must be a pandas DataFrame of features")
    y = np.asarray(y)
    groups = np.asarray(groups, dtype=np.int64)
    if len(X) != len(y) or int(groups.sum()) != len(X):
        raise ValueError(f"inconsistent sizes: {len(X)} rows, {len(y)} labels, groups sum to {int(groups.sum())}")
    check_features(X, list(X.columns))
    if qids is None:
        qids = np.repeat(np.array([f"g{i}" for i in range(len(groups))]), groups)
    qids = np.asarray([str(q) for q in qids])
    if len(qids) != len(X):
        raise ValueError("qids must have one entry per row")
    if not np.array_equal(_groups_from_qids(qids), groups):
        raise ValueError("qids must match groups: each query's rows contiguous, in group order")
    return y, qids


def _lgbm_ranker(rp: RankingSettings, seed: int) -> lgb.LGBMRanker:
    """The LambdaMART model the ``ranking:`` section describes (deterministic, row-wise)."""
    return lgb.LGBMRanker(
        objective="lambdarank",
        n_estimators=rp.n_estimators,
        learning_rate=rp.learning_rate,
        num_leaves=rp.num_leaves,
        min_child_samples=rp.min_data_in_leaf,
        subsample=rp.bagging_fraction,
        subsample_freq=1 if rp.bagging_fraction < 1.0 else 0,
        colsample_bytree=rp.feature_fraction,
        random_state=seed,
        n_jobs=rp.n_jobs,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )


def _kind_gate(by_kind: Mapping[str, Mapping[str, float]], min_gain: float) -> dict[str, Any]:
    """``validation_by_kind`` and the ``rerank_kinds`` where the ranker beat the hybrid order by ``min_gain``."""
    if not by_kind:
        return {}
    return {"validation_by_kind": dict(by_kind),
            "rerank_kinds": sorted(kind for kind, v in by_kind.items()
                                   if v["ranker_ndcg"] >= v["pre_rerank_ndcg"] + min_gain)}


def train_ranker(
    X: pd.DataFrame,
    y: np.ndarray,
    groups: np.ndarray,
    params: Mapping[str, Any] | None = None,
    seed: int | None = None,
    qids: np.ndarray | None = None,
) -> LambdaMARTRanker:
    """Fit LambdaMART on query-grouped rows, early-stopping on a by-query validation split.

    ``groups`` are the row counts of consecutive queries (as ``build_training_frame`` returns).
    ``qids`` (one per row) are recorded in the ranker so that evaluation can prove it never trained
    on an evaluation query; when omitted, synthetic group ids are used for the validation split.
    """
    seed = param_seed(params) if seed is None else seed
    rp = _ranking_params(params)
    y, qids = _check_training_rows(X, y, groups, qids)
    features = [str(c) for c in X.columns]
    Xf = X.astype(np.float32).reset_index(drop=True)
    eval_at = list(rp.eval_at)
    model = _lgbm_ranker(rp, seed)
    train_rows, valid_rows = split_groups_for_validation(qids, rp.valid_fraction, seed)
    fit_kwargs: dict[str, Any] = {}
    info: dict[str, Any] = {"seed": seed, "eval_at": eval_at}
    if valid_rows.any() and train_rows.any():
        fit_kwargs = {
            "eval_set": [(Xf[valid_rows], y[valid_rows])],
            "eval_group": [_groups_from_qids(qids[valid_rows])],
            "eval_at": eval_at,
            "callbacks": [lgb.early_stopping(rp.early_stopping_rounds, verbose=False)],
        }
    else:
        train_rows = np.ones(len(Xf), dtype=bool)
    model.fit(Xf[train_rows], y[train_rows], group=_groups_from_qids(qids[train_rows]), **fit_kwargs)

    booster = model.booster_
    best = model.best_iteration_ if fit_kwargs and model.best_iteration_ else booster.current_iteration()
    if fit_kwargs:
        info["best_iteration"] = int(best)
        info["valid_ndcg"] = {k: float(v) for k, v in model.best_score_.get("valid_0", {}).items()}
        info["n_valid_queries"] = int(len(set(qids[valid_rows].tolist())))
    info["n_train_queries"] = int(len(set(qids[train_rows].tolist())))
    info["intent_queries"] = intent_queries(Xf[train_rows], qids[train_rows])
    info["intent_features_seen"] = intent_features_seen(info["intent_queries"], rp.min_intent_queries)
    # Keep only the trees up to the best iteration, so predict() needs no num_iteration argument.
    trimmed = lgb.Booster(model_str=booster.model_to_string(num_iteration=int(best)))
    if fit_kwargs:
        by_kind = validation_by_kind(Xf[valid_rows], y[valid_rows], qids[valid_rows], trimmed.predict(Xf[valid_rows]),
                                     k=eval_at[0])
        info.update(_kind_gate(by_kind, rp.min_validation_gain))
    return LambdaMARTRanker(trimmed, features, trained_qids=qids.tolist(), info=info)


def intent_queries(X: pd.DataFrame, qids: np.ndarray) -> dict[str, dict[str, int]]:
    """Per query kind, how many training queries had each intent feature (``INTENT_FEATURES``) take two or more
    values among their candidates: how often the ranker saw that intent tell candidates apart. Empty when the
    features lack ``has_text``/``has_image``."""
    if not {"has_text", "has_image"} <= set(X.columns):
        return {}
    feats = sorted({f for f in INTENT_FEATURES.values() if f in X.columns})
    varies = X[feats].groupby(qids, sort=False).nunique() > 1
    first = X.groupby(qids, sort=False)[["has_text", "has_image"]].first()
    kinds = np.array([query_kind(t > 0, i > 0) for t, i in zip(first["has_text"], first["has_image"], strict=True)])
    return {kind: {f: int(varies[f].to_numpy()[kinds == kind].sum()) for f in feats} for kind in sorted(set(kinds))}


def intent_features_seen(counts: Mapping[str, Mapping[str, int]], min_queries: int) -> dict[str, list[str]]:
    """Per query kind, the intent features seen in at least ``min_queries`` training queries (``intent_queries``):
    the intents the ranker may be trusted to honour (``LambdaMARTRanker.knows_intents``)."""
    return {kind: [f for f, n in by_feature.items() if n >= min_queries] for kind, by_feature in counts.items()}


def validation_by_kind(X: pd.DataFrame, y: np.ndarray, qids: np.ndarray, pred: np.ndarray,
                       k: int = 10) -> dict[str, dict[str, float]]:
    """Per query kind, mean NDCG@k on the validation queries of the hybrid order (``pre_rerank``) and of the
    ranker's order. Empty when the features lack ``pre_rerank``/``has_text``/``has_image``."""
    from modules.evaluation.metrics import ndcg_at_k

    if not {"pre_rerank", "has_text", "has_image"} <= set(X.columns):
        return {}
    frame = pd.DataFrame({"qid": qids, "y": y, "pre": X["pre_rerank"].to_numpy(), "pred": pred,
                          "t": X["has_text"].to_numpy() > 0, "i": X["has_image"].to_numpy() > 0})
    scores: dict[str, dict[str, list[float]]] = {}
    for _, g in frame.groupby("qid", sort=False):
        rel = {str(j): float(v) for j, v in enumerate(g["y"]) if v > 0}
        if not rel:
            continue
        ids = [str(j) for j in range(len(g))]
        by = scores.setdefault(query_kind(bool(g["t"].iloc[0]), bool(g["i"].iloc[0])), {"pre": [], "ranker": []})
        for name, col in (("pre", "pre"), ("ranker", "pred")):
            order = np.argsort(-g[col].to_numpy(), kind="stable")
            by[name].append(ndcg_at_k([ids[j] for j in order], rel, k))
    return {kind: {"n_queries": len(v["pre"]), "pre_rerank_ndcg": float(np.mean(v["pre"])),
                   "ranker_ndcg": float(np.mean(v["ranker"]))} for kind, v in scores.items()}
