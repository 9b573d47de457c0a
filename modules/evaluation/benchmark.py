"""``pixelmatch benchmark``: measure the search methods on a catalog's EVAL queries and write the report.

* ``run_benchmark_cli`` (``pixelmatch benchmark --scale S``): catalog -> embeddings -> engine -> ranker (trained on
  TRAIN queries only) -> evaluation on EVAL queries -> report.
* ``run_serving_benchmark`` (``pixelmatch benchmark --serving-dir DIR --data DATA``): the pushed bundle
  ``DIR/LATEST`` names, loaded and checked by the server's own loader (``serving.bundle_manager``), evaluated on the
  EVAL queries of DATA with the same code, written as the same kind of report.
* ``low_confidence_report`` / ``describe_low_confidence``: how the calibrated low-confidence flag behaves on
  held-out queries; ``describe_rrf_tuning``: the text queries' RRF weights the engine serves (tuned at build or not).
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modules.config import param_seed
from modules.evaluation.blessing import bless, bless_for
from modules.evaluation.report import write_benchmark
from modules.evaluation.search_eval import METHODS, build_benchmark_engines, evaluate_engine

SERVING_SECTION = "search-bundle"


class NoBundleError(ValueError):
    """The serving directory holds no pushed bundle to measure."""


def low_confidence_report(engine: Any, eval_queries: Sequence[Mapping[str, Any]], n: int = 200, seed: int | None = None
                          ) -> dict[str, Any] | None:
    """How the calibrated ``low_confidence`` flag behaves on held-out data: the share of EVAL text queries it flags
    (false alarms) and the share of fresh gibberish (a different seed from the calibration set) it flags."""
    seed = param_seed() if seed is None else seed
    from modules.search import gibberish_queries, sample_query_texts

    thr = engine.low_conf_threshold
    texts = sample_query_texts(eval_queries, n, seed, kind="text")
    if thr is None or not texts:
        return None
    junk = gibberish_queries(len(texts), seed + 1)
    real = np.array([engine.query_confidence(t) < thr for t in texts])
    fake = np.array([engine.query_confidence(t) < thr for t in junk])
    return {"threshold": float(thr), "n": len(texts), "eval_flagged": float(real.mean()),
            "gibberish_flagged": float(fake.mean())}


def describe_low_confidence(report: Mapping[str, Any] | None) -> str:
    if not report:
        return "Low-confidence flag: not calibrated (no TRAIN text queries)"
    return (f"Low-confidence flag: best dense cosine < {report['threshold']:.3f} (calibrated on TRAIN queries vs "
            f"seeded gibberish); flags {100 * report['gibberish_flagged']:.1f}% of {report['n']} fresh gibberish "
            f"queries and {100 * report['eval_flagged']:.1f}% of {report['n']} EVAL text queries")


def describe_rrf_tuning(report: Mapping[str, Any] | None) -> str:
    """One line about the text queries' RRF list weights (``modules.search.rrf_tuning``)."""
    if not report:
        return "RRF weights (text queries): params.yaml's"
    if "skipped" in report:
        return f"RRF weights (text queries): params.yaml's (tuning skipped: {report['skipped']})"
    ndcg = report["ndcg_at_10"]
    return (f"RRF weights (text queries): tuned on {report['queries']} held-out TRAIN text queries, {report['start']} "
            f"-> {report['weights']} (their NDCG@10 {ndcg['start']:.4f} -> {ndcg['tuned']:.4f})")


def _describe_ranker(info: Mapping[str, Any]) -> str:
    """One readable line about the trained ranker (sizes, early stopping, strongest features)."""
    parts = [f"{info.get('n_train_queries', '?')} train + {info.get('n_valid_queries', 0)} validation queries",
             f"{info.get('n_rows', '?')} candidate rows"]
    if "best_iteration" in info:
        valid = ", ".join(f"{key} {val:.4f}" for key, val in info.get("valid_ndcg", {}).items())
        parts.append(f"early-stopped at {info['best_iteration']} trees (validation {valid})")
    if info.get("top_features"):
        parts.append("top features by gain: " + ", ".join(list(info["top_features"])[:5]))
    if info.get("validation_by_kind"):
        gate = ", ".join(f"{kind} {v['pre_rerank_ndcg']:.4f} -> {v['ranker_ndcg']:.4f} (n={v['n_queries']})"
                         for kind, v in sorted(info["validation_by_kind"].items()))
        parts.append(f"validation NDCG@10 hybrid -> ranker: {gate}; re-ranks "
                     f"{', '.join(info.get('rerank_kinds') or []) or 'no query kind'} (the other kinds keep the hybrid "
                     "order, so their '+ LambdaMART' rows equal the hybrid rows)")
    return "; ".join(parts)


def _benchmark_section(scale: str, params: Mapping[str, Any]) -> str:
    """`search` for the demo scale (params generate.scale), `search-<scale>` for the others."""
    return "search" if scale == str(params["generate"]["scale"]) else f"search-{scale}"


def _prepare_catalog(scale: str, root: Path, params: Mapping[str, Any], seed: int, timings: dict[str, float]
                     ) -> dict[str, Any]:
    """The catalog's manifest; generates the ``scale`` catalog in ``root`` first when it holds none."""
    from modules.data.catalog.generate import generate_catalog
    from modules.data.data_io import load_manifest

    if not (root / "manifest.json").is_file():
        t = time.perf_counter()
        print(f"[benchmark] generating the {scale} catalog in {root}", flush=True)
        generate_catalog(scale, root, seed=seed, params=params)
        timings["generate"] = time.perf_counter() - t
    return load_manifest(root)


def _train_attached_ranker(engine: Any, ranker_queries: Sequence[Mapping[str, Any]], params: Mapping[str, Any],
                           root: Path, seed: int, timings: dict[str, float]) -> dict[str, Any]:
    """Train LambdaMART on ``ranker_queries``, attach it to ``engine``; returns what the report says about it."""
    from modules.search.rerank_train import build_training_frame, train_ranker

    if not ranker_queries:
        return {}
    t = time.perf_counter()
    X, y, groups, qids = build_training_frame(engine, ranker_queries, data_dir=str(root))
    ranker = train_ranker(X, y, groups, params=params, seed=seed, qids=qids)
    timings["ranker"] = time.perf_counter() - t
    engine.ranker = ranker
    return {**ranker.info, "n_rows": len(X), "top_features": dict(list(ranker.feature_importance().items())[:6])}

METRICS_LINE = ("Metrics: NDCG@10 with linear gains (ranx `ndcg`), MRR cut at 10, Recall@10 over all relevant items; "
                "Cold-Start Recall@10 over eval queries whose relevant items are new SKUs (no interactions); "
                "latency = wall time of one engine call in this process (query encoding included, photo decoding "
                "excluded)")


def _benchmark_lines(scale: str, manifest: Mapping[str, Any], info: Mapping[str, Any], params: Mapping[str, Any],
                     queries: tuple[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]],
                     ranker_info: Mapping[str, Any], verdict: tuple[bool, list[str]],
                     low_conf: Mapping[str, Any] | None, timings: Mapping[str, float]) -> list[str]:
    """The bullet lines above the benchmark tables: catalog, encoders, metrics, ranker, blessing, timings."""
    train_queries, eval_queries = queries
    blessed, reasons = verdict
    counts = manifest.get("counts", {})
    n_cold = sum(1 for q in eval_queries if q.get("cold"))
    return [
        f"Catalog: {manifest.get('source', '?')} `{scale}` (seed {manifest.get('seed', param_seed(params))}): "
        f"{counts.get('items', info['n_items'])} items ({info['n_with_image']} with photos), "
        f"{len(train_queries)} train / {len(eval_queries)} eval queries ({n_cold} cold-start eval queries)",
        f"Encoders: SBERT `{params.get('encoders', {}).get('text', {}).get('model', '')}`, image encoder "
        f"`{info['image_encoder']}`, fusion `{info['fusion']}`; the image side's trained part (a tower "
        "or a LiT head), learned fusion and LambdaMART are trained on this catalog and the TRAIN queries only",
        METRICS_LINE,
        "LambdaMART: " + (_describe_ranker(ranker_info) if ranker_info else "not trained (no train queries)"),
        f"Blessing rule (`{'blessed' if blessed else 'not blessed'}`): " + "; ".join(reasons),
        describe_low_confidence(low_conf),
        describe_rrf_tuning(info.get("rrf_tuning")),
        "Build timings (s): " + ", ".join(f"{key} {val:.1f}" for key, val in timings.items()),
    ]



def _evaluate_built(built: Any, eval_queries: Sequence[Mapping[str, Any]], k: int, root: Path, seed: int
                    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Every method on the built engines (late fusion on its own engine), in METHODS order, and the
    low-confidence report."""
    results = evaluate_engine(built.engine, eval_queries, k=k, data_dir=root, progress=True)
    if built.late_engine is not None:
        results.update(evaluate_engine(built.late_engine, eval_queries, k=k, methods=("late",), data_dir=root))
    results = {key: results[key] for key in METHODS if key in results}
    return results, low_confidence_report(built.engine, eval_queries, seed=seed)


def run_benchmark_cli(
    scale: str,
    data_dir: str | None = None,
    out_md: str = "docs/benchmark_results.md",
    params_path: str | None = None,
) -> dict[str, Any]:
    """``pixelmatch benchmark``: measure every search method on the eval queries and write the report.

    ``data_dir`` defaults to ``data/benchmark_<scale>``; a catalog is generated there at ``scale``
    when it holds none (an existing catalog is reused as is). The LambdaMART ranker is trained on
    the TRAIN queries only (``source == judged`` when there are any) and evaluated on the EVAL ones.
    Returns ``{"results", "blessed", "reasons", "ranker", "timings_s", "section", "paths"}``.
    """
    from modules.config import load_params
    from modules.data.data_io import load_queries
    from modules.search.fusion import ranker_queries as ranker_queries_of
    from modules.search.rerank_train import split_queries

    params = load_params(params_path)
    seed, k = param_seed(params), int(params["evaluation"]["k"])
    scales = params["generate"]["scales"]
    if scale not in scales:
        raise ValueError(f"unknown scale {scale!r}; choose from {sorted(scales)}")
    root = Path(data_dir) if data_dir else Path("data") / f"benchmark_{scale}"
    timings: dict[str, float] = {}
    wall = time.perf_counter()
    manifest = _prepare_catalog(scale, root, params, seed, timings)
    train_queries, eval_queries = split_queries(load_queries(root))
    if not eval_queries:
        raise ValueError(f"{root}/queries.jsonl holds no eval queries: nothing to measure")
    ranker_queries = ranker_queries_of([q for q in train_queries if q.get("source", "judged") == "judged"] or train_queries,
                                     params.get("fusion"), seed)   # as RankerTrainer: none that trained the fusion

    print(f"[benchmark] {manifest.get('counts', {}).get('items', '?')} items, {len(train_queries)} train / "
          f"{len(eval_queries)} eval queries; building embeddings and indexes", flush=True)
    built = build_benchmark_engines(root, params, train_queries, seed=seed)
    timings.update(built.timings_s)
    ranker_info = _train_attached_ranker(built.engine, ranker_queries, params, root, seed, timings)

    print("[benchmark] evaluating", flush=True)
    t = time.perf_counter()
    results, low_conf = _evaluate_built(built, eval_queries, k, root, seed)
    timings["evaluation"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - wall

    blessed, reasons = bless(results, None, params)
    section = _benchmark_section(scale, params)
    command = f"pixelmatch benchmark --scale {scale}" + (f" --data {data_dir}" if data_dir else "") + (
        f" --params {params_path}" if params_path else "")
    lines = _benchmark_lines(scale, manifest, built.info, params, (train_queries, eval_queries), ranker_info,
                             (blessed, reasons), low_conf, timings)
    paths = write_benchmark(results, out_md, section=section, command=command, k=k,
                            extra={"ranker": ranker_info, "timings_s": timings, "blessed": blessed,
                                   "low_confidence": low_conf, "reasons": reasons,
                                   "catalog": {"scale": scale, "data_dir": str(root), **manifest.get("counts", {})}},
                            extra_lines=lines)
    print(f"[benchmark] wrote {paths['md']} (section {section}), {paths['json']}, {paths['png']}", flush=True)
    return {"results": results, "blessed": blessed, "reasons": reasons, "ranker": ranker_info,
            "timings_s": timings, "section": section, "paths": {key: str(p) for key, p in paths.items()}}


def load_served_engine(serving_dir: str | Path, params: dict[str, Any]) -> tuple[str, Any]:
    """``(version, engine)`` of the bundle ``SERVING_DIR/LATEST`` names, verified, loaded and smoke-tested by the
    server's own loader (``serving.bundle_manager``); the engine carries the bundle's LambdaMART ranker.

    Raises :class:`NoBundleError` when the directory holds no pushed bundle, ``BundleError`` for a broken one.
    """
    from modules.bundle import read_latest
    from serving.bundle_manager import BundleManager

    version = read_latest(serving_dir)
    if version is None:
        raise NoBundleError(f"{serving_dir}: no LATEST bundle (run `pixelmatch run --serving-dir {serving_dir}` first)")
    version_dir = Path(serving_dir) / version
    if not (version_dir / "manifest.json").is_file():
        raise NoBundleError(f"{version_dir}: LATEST names a bundle without a manifest.json")
    return version, BundleManager(serving_dir, params).build(version, version_dir).engine


def run_serving_benchmark(
    serving_dir: str,
    data_dir: str,
    out_md: str = "docs/benchmark_results.md",
    params_path: str | None = None,
    section: str = SERVING_SECTION,
) -> dict[str, Any]:
    """``pixelmatch benchmark --serving-dir DIR --data DATA``: evaluate the pushed bundle on DATA's EVAL queries.

    Nothing is trained or rebuilt: the engine and ranker are the bundle's, loaded as the server loads them (the
    delta log of live adds is not replayed). The blessing rule is the pipeline evaluator's (``bless_for``), without
    a baseline. Returns the same keys as :func:`run_benchmark_cli` plus ``"version"``.
    """
    from modules.config import load_params
    from modules.data.data_io import load_manifest, load_queries
    from modules.search.rerank_train import split_queries

    params = load_params(params_path)
    seed, k = param_seed(params), int(params["evaluation"]["k"])
    timings: dict[str, float] = {}
    t = time.perf_counter()
    version, engine = load_served_engine(serving_dir, params)
    timings["load"] = time.perf_counter() - t
    _, eval_queries = split_queries(load_queries(data_dir))
    if not eval_queries:
        raise ValueError(f"{data_dir}/queries.jsonl holds no eval queries: nothing to measure")

    print(f"[benchmark] bundle {version}: evaluating {len(eval_queries)} eval queries of {data_dir}", flush=True)
    t = time.perf_counter()
    results = evaluate_engine(engine, eval_queries, k=k, data_dir=data_dir, progress=True)
    low_conf = low_confidence_report(engine, eval_queries, seed=seed)
    timings["evaluation"] = time.perf_counter() - t
    rule, blessed, reasons = bless_for(eval_queries, results, None, params)

    ranker = getattr(engine, "ranker", None)
    ranker_info = dict(getattr(ranker, "info", {}) or {})
    counts = load_manifest(data_dir).get("counts", {})
    command = f"pixelmatch benchmark --serving-dir {serving_dir} --data {data_dir}" + (
        f" --params {params_path}" if params_path else "")
    lines = [
        f"Bundle: `{version}` in {serving_dir}, loaded by the server's loader (serving.bundle_manager); catalog "
        f"{data_dir}: {counts.get('items', '?')} items, {len(eval_queries)} eval queries "
        f"({sum(1 for q in eval_queries if q.get('cold'))} cold-start)",
        METRICS_LINE,
        "LambdaMART: " + (_describe_ranker(ranker_info) if ranker_info else "none in the bundle"),
        f"Blessing rule `{rule}` (`{'blessed' if blessed else 'not blessed'}`): " + "; ".join(reasons),
        describe_low_confidence(low_conf),
        describe_rrf_tuning(engine.state.rrf_tuning),
        "Timings (s): " + ", ".join(f"{key} {val:.1f}" for key, val in timings.items()),
    ]
    paths = write_benchmark(results, out_md, section=section, command=command, k=k, extra_lines=lines,
                            extra={"bundle": version, "serving_dir": str(serving_dir), "ranker": ranker_info,
                                   "timings_s": timings, "blessed": blessed, "rule": rule, "reasons": reasons,
                                   "low_confidence": low_conf, "catalog": {"data_dir": str(data_dir), **counts}})
    print(f"[benchmark] wrote {paths['md']} (section {section}), {paths['json']}, {paths['png']}", flush=True)
    return {"version": version, "results": results, "blessed": blessed, "reasons": reasons, "ranker": ranker_info,
            "timings_s": timings, "section": section, "paths": {key: str(p) for key, p in paths.items()}}
