"""Offline search evaluation: every retriever on the judged EVAL queries.

* ``evaluate_engine`` runs each method on the eval-split queries it can serve and returns, per
  method, NDCG@10, MRR@10, Recall@10, Precision@10, MAP@10 (``modules.evaluation.metrics``, checked against
  ranx), Cold-Start Recall@10 (queries whose relevant items are new SKUs) and per-query latency.
* ``build_benchmark_engines`` embeds and indexes a catalog the way ``pixelmatch benchmark`` measures it.

The blessing rules are in ``modules.evaluation.blessing``, the report writing in ``modules.evaluation.report`` and
``pixelmatch benchmark`` in ``modules.evaluation.benchmark``.

Latency is wall-clock time of the engine call (query encoding, retrieval, fusion, re-ranking) on
this process, measured with ``time.perf_counter``; loading a query photo from disk is outside the
timer, and the first ``WARMUP_QUERIES`` calls of each method (graph tracing, caches) are not timed.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modules.config import param_seed
from modules.evaluation import metrics as M

WARMUP_QUERIES = 3


# --------------------------------------------------------------------------------------------
# Methods
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Method:
    """One evaluated configuration: which engine entry point, which retriever, which query kind."""

    key: str
    label: str
    kind: str  # the query kind it is evaluated on: text | image | composed
    retriever: str | None = None  # for search_text
    rerank: bool = False  # True: the engine's attached LambdaMART ranker re-orders the candidates
    fusion: str | None = None  # the fusion method the engine must hold (its `fusion` retriever)


METHODS: dict[str, Method] = {
    m.key: m
    for m in (
        Method("tfidf", "TF-IDF", "text", "tfidf"),
        Method("bm25", "BM25", "text", "bm25"),
        Method("text", "SBERT text (dense)", "text", "text"),
        Method("image", "Image space (text → image)", "text", "image"),
        Method("late", "Late-avg fusion (text + image)", "text", "fusion", fusion="late"),
        Method("learned", "Learned projection fusion", "text", "fusion", fusion="learned"),
        Method("hybrid", "Hybrid (BM25 + dense, RRF)", "text", "hybrid"),
        Method("hybrid+ltr", "Hybrid + LambdaMART", "text", "hybrid", rerank=True),
        Method("photo", "Photo query → search_image", "image"),
        Method("photo+ltr", "Photo query → search_image + LambdaMART", "image", rerank=True),
        Method("composed", "Photo + text → search_multimodal", "composed"),
        Method("composed+ltr", "Photo + text → search_multimodal + LambdaMART", "composed", rerank=True),
    )
}
DEFAULT_METHODS = tuple(METHODS)
SERVED_TEXT_METHODS = ("hybrid+ltr", "hybrid")  # what `search_text` serves, best first


def served_method(results: Mapping[str, Any]) -> str:
    """The text method the service answers with: hybrid + LambdaMART when evaluated, else hybrid."""
    for key in SERVED_TEXT_METHODS:
        if key in results:
            return key
    raise KeyError("results hold neither 'hybrid' nor 'hybrid+ltr'")


# --------------------------------------------------------------------------------------------
# Running queries
# --------------------------------------------------------------------------------------------
def _result_pairs(response: Any) -> list[tuple[str, float]]:
    """``[(item_id, score)]`` of a SearchResponse (or of a plain list of results)."""
    results = getattr(response, "results", response)
    out = []
    for r in results:
        if isinstance(r, Mapping):
            out.append((str(r["item_id"]), float(r["score"])))
        else:
            out.append((str(r.item_id), float(r.score)))
    return out


def _ranked_pairs(pairs: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Scores that encode the engine's own order, so ties cannot re-order a response."""
    n = len(pairs)
    return [(item, float(n - i)) for i, (item, _) in enumerate(pairs)]


def _load_query_image(query: Mapping[str, Any], data_dir: str | Path | None) -> Any:
    from modules.data.images import load_image

    rel = str(query.get("image_path") or "")
    if not rel:
        raise ValueError(f"query {query['qid']!r} of kind {query.get('kind')!r} has no image_path")
    if data_dir is None:
        raise ValueError("data_dir is required to evaluate image and composed queries")
    return load_image(Path(data_dir) / rel)


def _query_call(engine: Any, method: Method, query: Mapping[str, Any], image: Any, k: int) -> Callable[[], Any]:
    """A zero-argument call that runs one query through the engine exactly as serving would."""
    if method.kind == "text":
        return lambda: engine.search_text(query["text"], top_k=k, retriever=method.retriever, rerank=method.rerank)
    if method.kind == "image":
        return lambda: engine.search_image(image, top_k=k, rerank=method.rerank)
    return lambda: engine.search_multimodal(query.get("text", ""), image, top_k=k, rerank=method.rerank)


def _available(engine: Any, method: Method) -> bool:
    if method.rerank and getattr(engine, "ranker", None) is None:
        return False
    if method.fusion is not None and getattr(getattr(engine, "fusion", None), "method", None) != method.fusion:
        return False
    supported = getattr(engine, "available_retrievers", None)
    if method.retriever is not None and supported is not None:
        names = supported() if callable(supported) else supported
        return method.retriever in names
    return True


def _method_metrics(
    run: dict[str, list[tuple[str, float]]],
    queries: Sequence[Mapping[str, Any]],
    latencies: list[float],
    k: int,
) -> dict[str, Any]:
    qrels = {q["qid"]: q["relevance"] for q in queries}
    out = M.evaluate_run(run, qrels, k=k)
    cold = {q["qid"]: q["relevance"] for q in queries if q.get("cold")}
    cold_m = M.evaluate_run(run, cold, k=k)
    warm_m = M.evaluate_run(run, {q: r for q, r in qrels.items() if q not in cold}, k=k)
    out[f"cold_recall@{k}"] = cold_m[f"recall@{k}"] if cold_m["n_queries"] else None
    out[f"cold_ndcg@{k}"] = cold_m[f"ndcg@{k}"] if cold_m["n_queries"] else None   # cold start, search side:
    out[f"warm_ndcg@{k}"] = warm_m[f"ndcg@{k}"] if warm_m["n_queries"] else None   # goal cold >= 0.95 x warm
    out["n_cold"] = cold_m["n_queries"]
    out["latency_ms"] = M.latency_summary(latencies)
    return out


def _intervals(run: dict[str, list[tuple[str, float]]], queries: Sequence[Mapping[str, Any]], k: int,
               ci: Mapping[str, Any]) -> dict[str, float]:
    """Bootstrap intervals of the mean NDCG@k and Recall@k over these queries."""
    from modules.evaluation.eval_sample import bootstrap_ci

    rows = [M.per_query_metrics(M.rank_by_score(run.get(q["qid"], [])), q["relevance"], k)
            for q in queries if any(float(g) >= 1 for g in q["relevance"].values())]
    out: dict[str, float] = {"ci_level": float(ci["level"])}
    for name in (f"ndcg@{k}", f"recall@{k}"):
        lo, hi = bootstrap_ci([r[name] for r in rows], int(ci["n_boot"]), float(ci["level"]), int(ci["seed"]))
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = lo, hi
    return out


def _check_inputs(engine: Any, queries: Sequence[Mapping[str, Any]], methods: Sequence[str]) -> None:
    """Refuse unknown methods, non-eval queries and a ranker trained on any of these qids."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    not_eval = [q.get("qid") for q in queries if q.get("split") != "eval"]
    if not_eval:
        raise ValueError(f"evaluate_engine takes eval-split queries only; got non-eval qids {not_eval[:5]}")
    ranker = getattr(engine, "ranker", None)
    leaked = set(getattr(ranker, "trained_qids", ())) & {str(q["qid"]) for q in queries}
    if leaked:
        raise ValueError(f"the attached ranker was trained on {len(leaked)} evaluation qid(s), e.g. {sorted(leaked)[:5]}")


def _run_method(engine: Any, method: Method, subset: Sequence[Mapping[str, Any]], images: Mapping[str, Any], k: int,
                progress: bool) -> tuple[dict[str, list[tuple[str, float]]], list[float]]:
    """Warm the method up, then run and time every query of ``subset``: ``(run, latencies_ms)``."""
    from tqdm import tqdm

    for q in subset[:WARMUP_QUERIES]:
        _query_call(engine, method, q, images.get(q["qid"]), k)()
    run: dict[str, list[tuple[str, float]]] = {}
    latencies: list[float] = []
    for q in tqdm(subset, desc=f"eval: {method.label}", unit="query", disable=not progress, leave=False):
        call = _query_call(engine, method, q, images.get(q["qid"]), k)
        t0 = time.perf_counter()
        response = call()
        latencies.append((time.perf_counter() - t0) * 1000.0)
        run[q["qid"]] = _ranked_pairs(_result_pairs(response)[:k])
    return run, latencies


def evaluate_engine(
    engine: Any,
    queries: Sequence[Mapping[str, Any]],
    k: int = 10,
    methods: Sequence[str] = DEFAULT_METHODS,
    data_dir: str | Path | None = None,
    progress: bool = False,
    ci: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Evaluate each method on the EVAL-split queries of its kind; returns ``{method_key: metrics}``.

    ``ci`` (``{"n_boot", "level", "seed"}``) adds bootstrap intervals over queries: ``ndcg@k_ci_low`` /
    ``ndcg@k_ci_high`` and the same for ``recall@k``.

    Raises ``ValueError`` if a query is not an eval query, or if the engine's ranker was trained on
    any of these qids. Methods the engine cannot run (no ranker attached, retriever not built) and
    methods without queries of their kind are left out of the result.
    """
    _check_inputs(engine, queries, methods)
    images = {q["qid"]: _load_query_image(q, data_dir) for q in queries if q.get("kind") in ("image", "composed")}
    results: dict[str, dict[str, Any]] = {}
    for key in methods:
        method = METHODS[key]
        subset = [q for q in queries if q.get("kind") == method.kind and q.get("relevance")]
        if not subset or not _available(engine, method):
            continue
        run, latencies = _run_method(engine, method, subset, images, k, progress)
        results[key] = _method_metrics(run, subset, latencies, k)
        if ci:
            results[key].update(_intervals(run, subset, k, ci))
        results[key]["label"] = method.label
        results[key]["query_kind"] = method.kind
        if progress:
            r = results[key]
            print(f"[eval] {method.label:45s} n={r['n_queries']:5d} ndcg@{k}={r[f'ndcg@{k}']:.4f} "
                  f"p95={r['latency_ms']['p95']:.1f} ms", flush=True)
    return results



# --------------------------------------------------------------------------------------------
# `pixelmatch benchmark`
# --------------------------------------------------------------------------------------------
@dataclass
class BenchmarkEngines:
    """The engines a benchmark evaluates plus what it took to build them."""

    engine: Any  # built with params' fusion method; the LambdaMART ranker is attached to it
    late_engine: Any | None  # the same catalog with late-average fusion (only its `fusion` retriever is evaluated)
    timings_s: dict[str, float]
    info: dict[str, Any]


def build_benchmark_engines(
    data_dir: str | Path,
    params: Mapping[str, Any],
    train_queries: Sequence[Mapping[str, Any]],
    seed: int | None = None,
    with_late: bool = True,
) -> BenchmarkEngines:
    """Embed and index the catalog exactly as the pipeline does (``modules.search.build``: EmbeddingGen's
    ``embed_catalog``, IndexBuilder's ``build_engine``), plus, unless the configured fusion is already ``late``,
    the same catalog with late-average fusion (sharing the calibrated threshold).

    Only ``train_queries`` are used for anything learned from queries (the learned fusion's pairs, calibration).
    """
    seed = param_seed(params) if seed is None else seed
    from modules.search.build import build_engine, embed_catalog

    emb = embed_catalog(data_dir, params, seed, progress=False)
    built = build_engine(emb, data_dir, params, train_queries, seed)
    timings = {**emb.seconds, **built.seconds}
    late_engine = None
    if with_late and built.info["fusion"] != "late":
        t = time.perf_counter()
        late_engine = build_engine(emb, data_dir, params, train_queries, seed, fusion_method="late",
                                   calibrate=False, photo_category_from=built.engine).engine
        late_engine.low_conf_threshold = built.info["low_confidence_threshold"]
        timings["late_engine"] = time.perf_counter() - t
    info = {"n_items": built.info["n_items"], "n_with_image": int(emb.has_image.sum()), "image_encoder": emb.image_kind,
            "fusion": built.info["fusion"], "n_fusion_pairs": built.info["n_fusion_pairs"],
            "n_filled_items": built.info["n_filled_items"], "rrf_tuning": built.info["rrf_tuning"]}
    return BenchmarkEngines(built.engine, late_engine, timings, info)
