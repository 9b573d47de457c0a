"""RetrievalEvaluator: benchmark on the eval split, metrics artifact and a ModelBlessing.

Judged queries: blessed only if the served method (hybrid + LambdaMART) beats BM25 NDCG@k by
``evaluation.bless_margin_over_bm25`` and does not regress more than ``evaluation.regression_tolerance``
against the baseline. Self-supervised known-item queries (an ingested catalog): text and photo queries are
judged on their own (``modules.evaluation.blessing``). The baseline is the last blessed run on the same data: the
``blessed_by_data.json`` ledger (``baseline_ledger``) keyed by ``data_hash``, else the Resolver's latest
blessing when it carries the same ``data_hash``; the first run on new data has none.
The blessing carries ``current_model_id`` (the search engine), as the strategy expects, and ``data_hash``.
"""
# No "from __future__ import annotations": the @component decorator reads real type hints.
import logging
import os
import re
import time

from tfx.types.standard_artifacts import Examples, Model, ModelBlessing

from components.artifacts import RetrievalMetrics
from components.common import SERVING_SUBDIR, local_dirs, params_from, read_queries
from components.retrieval_evaluator import executor
from components.tfx_types import InputArtifact, OutputArtifact, Parameter, component

log = logging.getLogger(__name__)


def _metric_name(name: str) -> str:
    """An MLflow-safe metric key: 'hybrid+ltr.ndcg@10' -> 'hybrid_ltr.ndcg_at_10'."""
    return re.sub(r"[^A-Za-z0-9_.\-/ :]", "_", name.replace("@", "_at_"))


@component
def RetrievalEvaluator(  # noqa: N802
    search_engine: InputArtifact[Model],
    ranker: InputArtifact[Model],
    queries: InputArtifact[Examples],
    metrics: OutputArtifact[RetrievalMetrics],
    blessing: OutputArtifact[ModelBlessing],
    data_dir: Parameter[str],
    params_json: Parameter[str] = "",
    data_hash: Parameter[str] = "",
    baseline_ledger: Parameter[str] = "",
    baseline_blessing: InputArtifact[ModelBlessing] = None,  # optional input
) -> None:
    """Evaluate on the EVAL queries only and write the blessing decision."""
    import mlflow
    from modules.tracking import child_run

    params = params_from(params_json)
    resolved = [baseline_blessing] if baseline_blessing is not None else []
    base, base_id, base_note = executor.baseline_metrics(resolved, data_hash, baseline_ledger)
    staged = local_dirs({"data": data_dir, "engine": search_engine, "ranker": ranker},
                        {"metrics": metrics, "blessing": blessing})
    with staged as local, child_run("evaluation", params={"baseline_blessing_id": base_id or "none"}):
        res = executor.evaluate(
            os.path.join(local["engine"], SERVING_SUBDIR),
            os.path.join(local["ranker"], SERVING_SUBDIR),
            read_queries(queries, "eval"),
            params,
            local["data"],
            local["metrics"],
            base,
            baseline_note=base_note,
        )
        flat = {
            _metric_name(f"{method}.{name}"): float(value)
            for method, values in res["results"].items()
            for name, value in values.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        }
        flat.update({_metric_name(f"known_item.{name}"): float(value) for name, value in res["summary"].items()})
        mlflow.log_metrics(flat)
        mlflow.log_metric("blessed", int(res["blessed"]))
        mlflow.set_tag("blessing_rule", res["rule"])
        mlflow.log_artifacts(local["metrics"], artifact_path="benchmark")
        mlflow.log_text("\n".join(res["reasons"]), "blessing_reasons.txt")
        os.makedirs(local["blessing"], exist_ok=True)
        with open(os.path.join(local["blessing"], "BLESSED" if res["blessed"] else "NOT_BLESSED"), "w") as f:
            f.write("\n".join(res["reasons"]) + "\n")
    metrics_file = os.path.join(metrics.uri, executor.METRICS_FILE)
    blessing.set_int_custom_property("blessed", int(res["blessed"]))
    blessing.set_int_custom_property("current_model_id", search_engine.id)
    blessing.set_string_custom_property("current_model", search_engine.uri)
    blessing.set_string_custom_property("metrics_uri", metrics_file)
    blessing.set_string_custom_property("rule", res["rule"])
    blessing.set_string_custom_property("reasons", " | ".join(res["reasons"])[:2000])
    blessing.set_string_custom_property("data_hash", data_hash)
    if base_id is not None:
        blessing.set_int_custom_property("baseline_blessing_id", int(base_id))
    if res["blessed"] and data_hash and baseline_ledger:
        executor.record_blessing(baseline_ledger, data_hash, {
            "metrics_uri": metrics_file, "blessing_uri": blessing.uri, "search_engine_id": search_engine.id,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    metrics.set_int_custom_property("blessed", int(res["blessed"]))
    metrics.set_string_custom_property("headline", res["headline"])
    log.info("RetrievalEvaluator: blessed=%s (%s)", res["blessed"], "; ".join(res["reasons"]))
    print(f"[pixelmatch] blessing: {'BLESSED' if res['blessed'] else 'NOT blessed'}: " + "; ".join(res["reasons"]))
