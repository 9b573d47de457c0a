"""Offline search evaluation: every retriever on the judged EVAL queries, blessing, benchmark report.

* ``evaluate_engine`` runs each method on the eval-split queries it can serve and returns, per
  method, NDCG@10, MRR@10, Recall@10, Precision@10, MAP@10 (``modules.evaluation.metrics``, checked against
  ranx), Cold-Start Recall@10 (queries whose relevant items are new SKUs) and per-query latency.
* ``bless`` decides whether a run may be pushed.
* ``write_benchmark`` rewrites one marked section of ``docs/benchmark_results.md`` (other code owns
  the other sections), the matching entry of ``docs/benchmark_results.json`` and a bar plot.
* ``run_benchmark_cli`` is ``pixelmatch benchmark``: catalog -> embeddings -> engine -> ranker
  (trained on TRAIN queries only) -> evaluation on EVAL queries -> report.

Latency is wall-clock time of the engine call (query encoding, retrieval, fusion, re-ranking) on
this process, measured with ``time.perf_counter``; loading a query photo from disk is outside the
timer, and the first ``WARMUP_QUERIES`` calls of each method (graph tracing, caches) are not timed.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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
    out[f"cold_recall@{k}"] = cold_m[f"recall@{k}"] if cold_m["n_queries"] else None
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

    images: dict[str, Any] = {}
    for q in queries:
        if q.get("kind") in ("image", "composed"):
            images[q["qid"]] = _load_query_image(q, data_dir)

    from tqdm import tqdm

    results: dict[str, dict[str, Any]] = {}
    for key in methods:
        method = METHODS[key]
        subset = [q for q in queries if q.get("kind") == method.kind and q.get("relevance")]
        if not subset or not _available(engine, method):
            continue
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
# Blessing
# --------------------------------------------------------------------------------------------
def _ndcg(results: Mapping[str, Any], key: str, k: int) -> float:
    return float(results[key][f"ndcg@{k}"])


def bless(
    metrics: Mapping[str, Any],
    baseline_metrics: Mapping[str, Any] | None,
    params: Mapping[str, Any] | None = None,
) -> tuple[bool, list[str]]:
    """Bless a run only if the served text method beats BM25 and does not regress.

    * the served method (hybrid + LambdaMART when evaluated, else hybrid) must beat BM25 NDCG@k
      by at least ``evaluation.bless_margin_over_bm25`` (absolute);
    * with a baseline (the latest blessed run's metrics, same shape), its NDCG@k must not fall
      more than ``evaluation.regression_tolerance`` below the baseline's served method.
    Returns ``(blessed, reasons)``; the reasons state each check with its numbers.
    """
    if params is None:
        from modules.config import load_params

        params = load_params()
    ev = params.get("evaluation", params)
    margin = float(ev.get("bless_margin_over_bm25", 0.05))
    tolerance = float(ev.get("regression_tolerance", 0.02))
    k = int(ev.get("k", 10))
    reasons: list[str] = []
    ok = True
    try:
        served = served_method(metrics)
    except KeyError:
        return False, ["no hybrid result: nothing to bless"]
    if "bm25" not in metrics:
        return False, ["no BM25 result to compare against"]
    cur, bm25 = _ndcg(metrics, served, k), _ndcg(metrics, "bm25", k)
    if cur >= bm25 + margin:
        reasons.append(f"{served} NDCG@{k} {cur:.4f} beats BM25 {bm25:.4f} by {cur - bm25:+.4f} (>= {margin})")
    else:
        ok = False
        reasons.append(f"{served} NDCG@{k} {cur:.4f} does not beat BM25 {bm25:.4f} by {margin} (diff {cur - bm25:+.4f})")
    if baseline_metrics:
        try:
            base_key = served_method(baseline_metrics)
            base = _ndcg(baseline_metrics, base_key, k)
        except KeyError:
            reasons.append("baseline has no hybrid result: regression check skipped")
        else:
            if cur >= base - tolerance:
                reasons.append(f"no regression: {cur:.4f} vs blessed {base:.4f} ({base_key}), tolerance {tolerance}")
            else:
                ok = False
                reasons.append(f"regression: {cur:.4f} vs blessed {base:.4f} ({base_key}) is below the tolerance {tolerance}")
    else:
        reasons.append("no blessed baseline yet: regression check skipped")
    return ok, reasons


# --------------------------------------------------------------------------------------------
# Benchmark report
# --------------------------------------------------------------------------------------------
def machine_info() -> str:
    """One line naming the CPU model, core count and RAM of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
                break
    except (OSError, ValueError):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu}, {cores} cores{ram}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    return f"{float(v):.{digits}f}"


def _method_rows(results: Mapping[str, Any], k: int) -> list[tuple[str, Mapping[str, Any]]]:
    return [(key, r) for key, r in results.items() if isinstance(r, Mapping) and f"ndcg@{k}" in r]


def render_section(
    results: Mapping[str, Any],
    section: str,
    command: str,
    machine: str,
    k: int = 10,
    extra_lines: Sequence[str] = (),
    plot_name: str | None = None,
) -> str:
    """The markdown of one benchmark section (without its marker comments)."""
    date = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        f"## Search benchmark ({section})" if section.startswith("search") else f"## {section}",
        "",
        f"- Command: `{command}`",
        f"- Machine: {machine}",
        f"- Date: {date}",
        *[f"- {line}" for line in extra_lines],
        "",
        f"| Method | NDCG@{k} | MRR | Recall@{k} | Cold-Start Recall@{k} | p95 ms |",
        "|---|---|---|---|---|---|",
    ]
    rows = _method_rows(results, k)
    for key, r in rows:
        lines.append(
            f"| {r.get('label', key)} | {_fmt(r[f'ndcg@{k}'])} | {_fmt(r['mrr'])} | {_fmt(r[f'recall@{k}'])} | "
            f"{_fmt(r.get(f'cold_recall@{k}'))} | {_fmt(r['latency_ms']['p95'], 1)} |"
        )
    lines += [
        "",
        "All figures, with the query set each method was measured on:",
        "",
        f"| Method | Query kind | Queries (cold) | Precision@{k} | MAP@{k} | p50 ms | p99 ms | mean ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, r in rows:
        lat = r["latency_ms"]
        lines.append(
            f"| {r.get('label', key)} | {r.get('query_kind', '')} | {r['n_queries']} ({r.get('n_cold', 0)}) | "
            f"{_fmt(r[f'precision@{k}'])} | {_fmt(r[f'map@{k}'])} | {_fmt(lat['p50'], 1)} | {_fmt(lat['p99'], 1)} | "
            f"{_fmt(lat['mean'], 1)} |"
        )
    if plot_name:
        lines += ["", f"![{section} NDCG@{k} and Recall@{k}]({plot_name})"]
    return "\n".join(lines) + "\n"


def _check_section(section: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", section):
        raise ValueError(f"section name must be alphanumeric (plus _ . -), got {section!r}")


def replace_section(document: str, section: str, body: str) -> str:
    """Replace the text between ``<!-- BEGIN section -->`` and ``<!-- END section -->`` (append if absent)."""
    _check_section(section)
    begin, end = f"<!-- BEGIN {section} -->", f"<!-- END {section} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(document):
        return pattern.sub(lambda _: block, document, count=1)
    if not document.strip():
        document = "# PixelMatch benchmark results\n\nEvery figure below was measured by the command written next to it.\n"
    return document.rstrip("\n") + "\n\n" + block + "\n"


def plot_results(results: Mapping[str, Any], out_png: str | Path, k: int = 10, title: str = "") -> Path:
    """Grouped bar plot of NDCG@k and Recall@k per method (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _method_rows(results, k)
    labels = [r.get("label", key) for key, r in rows]
    ndcg = [float(r[f"ndcg@{k}"]) for _, r in rows]
    recall = [float(r[f"recall@{k}"]) for _, r in rows]
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.5))
    ax.barh(y - 0.2, ndcg, height=0.4, label=f"NDCG@{k}")
    ax.barh(y + 0.2, recall, height=0.4, label=f"Recall@{k}")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("score (eval queries)")
    ax.set_title(title or f"Search quality @{k}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write_benchmark(
    results: Mapping[str, Any],
    out_md: str | Path = "docs/benchmark_results.md",
    section: str = "search",
    command: str = "",
    machine: str | None = None,
    k: int = 10,
    extra: Mapping[str, Any] | None = None,
    extra_lines: Sequence[str] = (),
) -> dict[str, Path]:
    """Write this section of the benchmark markdown, its JSON entry and its bar plot.

    Only the text between ``<!-- BEGIN section -->`` and ``<!-- END section -->`` of ``out_md`` is
    replaced; the JSON (``<out_md stem>.json`` next to it) keeps the other sections' entries. The
    plot is ``benchmark_<section>.png`` in the same folder.
    """
    if not command:
        raise ValueError("write_benchmark needs the command that produced the figures")
    _check_section(section)
    machine = machine or machine_info()
    md_path = Path(out_md)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    png_path = md_path.parent / f"benchmark_{section}.png"
    json_path = md_path.with_suffix(".json")

    plot_results(results, png_path, k=k, title=f"PixelMatch {section}: eval queries")
    body = render_section(results, section, command, machine, k, extra_lines, plot_name=png_path.name)
    document = md_path.read_text() if md_path.is_file() else ""
    md_path.write_text(replace_section(document, section, body))

    data: dict[str, Any] = {}
    if json_path.is_file():
        try:
            data = json.loads(json_path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{json_path} is not valid JSON; fix or delete it") from exc
    data[section] = {
        "command": command,
        "machine": machine,
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "k": k,
        "results": _jsonable(results),
        **({"extra": _jsonable(extra)} if extra else {}),
    }
    json_path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return {"md": md_path, "json": json_path, "png": png_path}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


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
    seed: int = 42,
    with_late: bool = True,
) -> BenchmarkEngines:
    """Embed and index the catalog exactly as the pipeline does (``modules.search.build``: EmbeddingGen's
    ``embed_catalog``, IndexBuilder's ``build_engine``), plus, unless the configured fusion is already ``late``,
    the same catalog with late-average fusion (sharing the calibrated threshold).

    Only ``train_queries`` are used for anything learned from queries (the learned fusion's pairs, calibration).
    """
    from modules.search.build import build_engine, embed_catalog

    emb = embed_catalog(data_dir, params, seed, progress=False)
    built = build_engine(emb, data_dir, params, train_queries, seed)
    timings = {**emb.seconds, **built.seconds}
    late_engine = None
    if with_late and built.info["fusion"] != "late":
        t = time.perf_counter()
        late_engine = build_engine(emb, data_dir, params, train_queries, seed, fusion_method="late",
                                   calibrate=False).engine
        late_engine.low_conf_threshold = built.info["low_confidence_threshold"]
        timings["late_engine"] = time.perf_counter() - t
    info = {"n_items": built.info["n_items"], "n_with_image": int(emb.has_image.sum()), "image_encoder": emb.image_kind,
            "fusion": built.info["fusion"], "n_fusion_pairs": built.info["n_fusion_pairs"],
            "n_filled_items": built.info["n_filled_items"]}
    return BenchmarkEngines(built.engine, late_engine, timings, info)


def low_confidence_report(engine: Any, eval_queries: Sequence[Mapping[str, Any]], n: int = 200, seed: int = 42
                          ) -> dict[str, Any] | None:
    """How the calibrated ``low_confidence`` flag behaves on held-out data: the share of EVAL text queries it flags
    (false alarms) and the share of fresh gibberish (a different seed from the calibration set) it flags."""
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
    return "search" if scale == str(params.get("generate", {}).get("scale", "small")) else f"search-{scale}"


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
    from modules.data.catalog.generate import generate_catalog
    from modules.data.data_io import load_manifest, load_queries
    from modules.search.rerank_train import build_training_frame, split_queries, train_ranker

    params = load_params(params_path)
    seed = int(params.get("seed", 42))
    k = int(params.get("evaluation", {}).get("k", 10))
    scales = params.get("generate", {}).get("scales", {})
    if scale not in scales:
        raise ValueError(f"unknown scale {scale!r}; choose from {sorted(scales)}")
    root = Path(data_dir) if data_dir else Path("data") / f"benchmark_{scale}"
    timings: dict[str, float] = {}
    wall = time.perf_counter()

    if not (root / "manifest.json").is_file():
        t = time.perf_counter()
        print(f"[benchmark] generating the {scale} catalog in {root}", flush=True)
        generate_catalog(scale, root, seed=seed, params=params)
        timings["generate"] = time.perf_counter() - t
    manifest = load_manifest(root)
    train_queries, eval_queries = split_queries(load_queries(root))
    if not eval_queries:
        raise ValueError(f"{root}/queries.jsonl holds no eval queries: nothing to measure")
    ranker_queries = [q for q in train_queries if q.get("source", "judged") == "judged"] or train_queries

    print(f"[benchmark] {manifest.get('counts', {}).get('items', '?')} items, {len(train_queries)} train / "
          f"{len(eval_queries)} eval queries; building embeddings and indexes", flush=True)
    built = build_benchmark_engines(root, params, train_queries, seed=seed)
    timings.update(built.timings_s)

    ranker_info: dict[str, Any] = {}
    if ranker_queries:
        t = time.perf_counter()
        X, y, groups, qids = build_training_frame(built.engine, ranker_queries, params=params, data_dir=str(root))
        ranker = train_ranker(X, y, groups, params=params, seed=seed, qids=qids)
        timings["ranker"] = time.perf_counter() - t
        built.engine.ranker = ranker
        ranker_info = {**ranker.info, "n_rows": len(X),
                       "top_features": dict(list(ranker.feature_importance().items())[:6])}

    print("[benchmark] evaluating", flush=True)
    t = time.perf_counter()
    results = evaluate_engine(built.engine, eval_queries, k=k, data_dir=root, progress=True)
    if built.late_engine is not None:
        results.update(evaluate_engine(built.late_engine, eval_queries, k=k, methods=("late",), data_dir=root))
    results = {key: results[key] for key in METHODS if key in results}
    low_conf = low_confidence_report(built.engine, eval_queries, seed=seed)
    timings["evaluation"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - wall

    blessed, reasons = bless(results, None, params)
    section = _benchmark_section(scale, params)
    command = f"pixelmatch benchmark --scale {scale}" + (f" --data {data_dir}" if data_dir else "") + (
        f" --params {params_path}" if params_path else "")
    counts = manifest.get("counts", {})
    n_cold = sum(1 for q in eval_queries if q.get("cold"))
    lines = [
        f"Catalog: {manifest.get('source', '?')} `{scale}` (seed {manifest.get('seed', seed)}): "
        f"{counts.get('items', built.info['n_items'])} items ({built.info['n_with_image']} with photos), "
        f"{len(train_queries)} train / {len(eval_queries)} eval queries ({n_cold} cold-start eval queries)",
        f"Encoders: SBERT `{params.get('encoders', {}).get('text', {}).get('model', '')}`, image encoder "
        f"`{built.info['image_encoder']}`, fusion `{built.info['fusion']}`; the image side's trained part (a tower "
        "or a LiT head), learned fusion and LambdaMART are trained on this catalog and the TRAIN queries only",
        "Metrics: NDCG@10 with linear gains (ranx `ndcg`), MRR cut at 10, Recall@10 over all relevant items; "
        "Cold-Start Recall@10 over eval queries whose relevant items are new SKUs (no interactions); "
        "latency = wall time of one engine call in this process (query encoding included, photo decoding excluded)",
        "LambdaMART: " + (_describe_ranker(ranker_info) if ranker_info else "not trained (no train queries)"),
        f"Blessing rule (`{'blessed' if blessed else 'not blessed'}`): " + "; ".join(reasons),
        describe_low_confidence(low_conf),
        "Build timings (s): " + ", ".join(f"{key} {val:.1f}" for key, val in timings.items()),
    ]
    paths = write_benchmark(results, out_md, section=section, command=command, k=k,
                            extra={"ranker": ranker_info, "timings_s": timings, "blessed": blessed,
                                   "low_confidence": low_conf,
                                   "reasons": reasons, "catalog": {"scale": scale, "data_dir": str(root), **counts}},
                            extra_lines=lines)
    print(f"[benchmark] wrote {paths['md']} (section {section}), {paths['json']}, {paths['png']}", flush=True)
    return {"results": results, "blessed": blessed, "reasons": reasons, "ranker": ranker_info,
            "timings_s": timings, "section": section, "paths": {key: str(p) for key, p in paths.items()}}
