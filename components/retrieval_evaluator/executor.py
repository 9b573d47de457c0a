"""RetrievalEvaluator logic: the search benchmark on the EVAL queries, blessing against BM25 and the baseline.

The blessing rule follows the queries' source (``modules.evaluation.blessing.rule_for``): judged queries use
``modules.evaluation.blessing.bless`` (NDCG@k); self-supervised known-item queries (an ingested catalog) use
``modules.evaluation.blessing.bless_selfsupervised`` (text and photo queries judged on their own). The regression
baseline is the last blessed run on the same data (``baseline_metrics``, the ``blessed_by_data.json`` ledger).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
METRICS_FILE = "metrics.json"


def attach_ranker(engine: Any, ranker: Any) -> None:
    if hasattr(engine, "set_ranker"):
        engine.set_ranker(ranker)
    else:
        engine.ranker = ranker


LEDGER_FILE = "blessed_by_data.json"  # in the pipeline root: data fingerprint -> the last blessed run on that data


def _read_json(path: str) -> dict | None:
    import tensorflow as tf

    if not path or not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def read_ledger(ledger_path: str) -> dict[str, dict]:
    """The blessed-by-data ledger ({data fingerprint: entry}), empty when there is none yet."""
    return _read_json(ledger_path) or {}


def record_blessing(ledger_path: str, data_hash: str, entry: dict[str, Any]) -> None:
    """Make ``entry`` the last blessed run for ``data_hash`` (written to a temporary name, then renamed)."""
    import tensorflow as tf

    ledger = read_ledger(ledger_path)
    ledger[data_hash] = entry
    tmp = f"{ledger_path}.tmp-{os.getpid()}"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(json.dumps(ledger, indent=2, sort_keys=True))
    tf.io.gfile.rename(tmp, ledger_path, overwrite=True)


def _prop(art: Any, name: str) -> str:
    return art.get_string_custom_property(name) if art.has_custom_property(name) else ""


def baseline_metrics(blessing_artifacts: list[Any], data_hash: str = "", ledger_path: str = ""
                     ) -> tuple[dict | None, int | None, str]:
    """``(metrics, blessing id, note)`` of the last blessed run on the SAME data, or ``(None, None, note)``.

    The ledger (``LEDGER_FILE``, keyed by the data fingerprint) is read first; then the Resolver's latest
    blessing (``blessing_artifacts``) counts only when it carries the same ``data_hash``. A run on a catalog
    never blessed before has no baseline: metrics of another catalog are not comparable. Without a
    fingerprint (older callers) the Resolver's blessing is used as is.
    """
    entry = read_ledger(ledger_path).get(data_hash) if data_hash and ledger_path else None
    metrics = _read_json(entry.get("metrics_uri", "")) if entry else None
    if metrics is not None:
        return metrics, entry.get("blessing_id"), f"baseline: last blessed run on this data ({data_hash[:12]}, ledger)"
    other = ""
    for art in blessing_artifacts or []:
        if data_hash and _prop(art, "data_hash") != data_hash:
            other = f"; the latest blessed run (blessing {art.id}) was on other data and is ignored"
            continue
        metrics = _read_json(_prop(art, "metrics_uri"))
        if metrics is not None:
            return metrics, art.id, f"baseline: latest blessed run (blessing {art.id})"
    return None, None, f"first blessed run on this data ({data_hash[:12] or 'no fingerprint'}): no baseline{other}"


def evaluate(
    engine_dir: str, ranker_dir: str, eval_queries: list[dict], params: dict[str, Any], data_dir: str, out_dir: str,
    baseline: dict | None, command: str = "pixelmatch run (TFX RetrievalEvaluator)", baseline_note: str = "",
) -> dict[str, Any]:
    """Evaluate every method, decide the blessing, write metrics.json, benchmark.md and plot.png.

    Returns ``{"results", "blessed", "reasons", "k", "rule", "summary"}``; ``summary`` holds the
    known-item aggregates (served vs BM25 MRR / Recall@k) when the rule is self-supervised.
    """
    from modules.encoders.text_runtime import served_query_encoder
    from modules.evaluation.benchmark import describe_low_confidence, describe_rrf_tuning, low_confidence_report
    from modules.evaluation.blessing import SELF_SUPERVISED, bless_for, summary
    from modules.evaluation.eval_sample import sample_eval_queries
    from modules.evaluation.report import machine_info, plot_results, render_section
    from modules.evaluation.search_eval import evaluate_engine
    from modules.search import SearchEngine
    from modules.search.rerank import LambdaMARTRanker

    engine = SearchEngine.load(engine_dir, params=params, text_encoder=served_query_encoder(params))   # as served
    attach_ranker(engine, LambdaMARTRanker.load(ranker_dir))
    ev, seed = params["evaluation"], int(params["seed"])
    k = int(ev["k"])
    n_all = len(eval_queries)
    eval_queries = sample_eval_queries(eval_queries, int(ev["sample_queries_per_kind"]), seed)
    ci = {"n_boot": int(ev["bootstrap_samples"]), "level": float(ev["ci_level"]), "seed": seed}
    results = evaluate_engine(engine, eval_queries, k=k, data_dir=data_dir, progress=True, ci=ci)
    rule, blessed, reasons = bless_for(eval_queries, results, baseline, params)
    reasons = [baseline_note, *reasons] if baseline_note else reasons
    known_item = summary(results, k) if rule == SELF_SUPERVISED else {}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / METRICS_FILE).write_text(json.dumps(results, indent=2, sort_keys=True, default=float))
    extra_lines = [f"Blessing rule `{rule}`: {'blessed' if blessed else 'not blessed'}: " + "; ".join(reasons),
                   f"Evaluated on a seeded sample of {len(eval_queries)} of {n_all} EVAL queries (at most "
                   f"{ev['sample_queries_per_kind']} per kind); intervals: {ci['level']:.0%} bootstrap over queries"]
    if any(q.get("kind", "text") == "text" and q.get("text") for q in eval_queries):
        extra_lines.append(describe_low_confidence(
            low_confidence_report(engine, eval_queries, seed=seed)))
    extra_lines.append(describe_rrf_tuning(engine.state.rrf_tuning))
    (out / "benchmark.md").write_text(
        render_section(results, section="pipeline", command=command, machine=machine_info(), k=k,
                       extra_lines=extra_lines, plot_name="plot.png")
    )
    plot_results(results, out / "plot.png", k=k, title="PixelMatch retrieval (eval queries)")
    return {"results": results, "blessed": blessed, "reasons": reasons, "k": k, "rule": rule, "summary": known_item,
            "headline": headline(results, k, len(eval_queries), n_all)}


def headline(results: dict[str, Any], k: int, n_sampled: int, n_all: int) -> str:
    """'hybrid+ltr NDCG@10 0.712 [0.680, 0.741], 500 of 750 eval queries' for the progress line."""
    from modules.evaluation.search_eval import served_method

    try:
        key = served_method(results)
    except KeyError:
        return f"{n_sampled} of {n_all} eval queries"
    r = results[key]
    ci = f" [{r[f'ndcg@{k}_ci_low']:.3f}, {r[f'ndcg@{k}_ci_high']:.3f}]" if f"ndcg@{k}_ci_low" in r else ""
    return f"{key} NDCG@{k} {r[f'ndcg@{k}']:.3f}{ci}, {n_sampled} of {n_all} eval queries"
