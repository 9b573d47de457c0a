"""Blessing rules: which rule applies to an evaluation, and the self-supervised (known-item) rule.

Two query sets reach the evaluator:

* **judged** queries (the synthetic catalog): graded relevance lists. Their rule is
  ``modules.evaluation.bless`` and is unchanged: the served text method must beat BM25 NDCG@k by
  ``evaluation.bless_margin_over_bm25`` and must not regress against the latest blessed run.
* **self-supervised** known-item queries (an ingested catalog, ``source == "self_supervised"``,
  made by ``modules.selfsup``): title-word queries and augmented product photos whose answer is
  the item they were made from. Issue 7 asks that blessing then compares **MRR and Recall@k** of
  the product against BM25 and against the previous blessed run.

The self-supervised rule scores the *served system* over **all** its known-item queries: each query
is answered the way the service answers its kind (``/search/text`` -> hybrid [+ LambdaMART],
``/search/image`` -> photo search [+ LambdaMART], composed -> multimodal search), and the result is
the query-weighted mean over the kinds. BM25 is scored over the same queries; it can only answer
text, so it scores 0 on photo and composed queries. That is the honest comparison of the product
against the lexical baseline: a shop owner replacing keyword search gets photo search too.
Title-word queries are copied from the titles, so BM25 is near its best on them; the photo half is
where the dense path earns its place.

Both metrics must beat BM25 by ``evaluation.bless_margin_over_bm25`` (absolute) and must not fall
more than ``evaluation.regression_tolerance`` below the same aggregate of the baseline's metrics.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from modules.evaluation import SERVED_TEXT_METHODS, bless

JUDGED = "judged"
SELF_SUPERVISED = "self_supervised"

# What the service answers each query kind with, best first (LambdaMART is attached when evaluated).
SERVED_METHODS: dict[str, tuple[str, ...]] = {
    "text": SERVED_TEXT_METHODS,
    "image": ("photo+ltr", "photo"),
    "composed": ("composed+ltr", "composed"),
}
# The lexical baseline: BM25 answers text queries only.
BM25_METHODS: dict[str, tuple[str, ...]] = {"text": ("bm25",)}


def rule_for(queries: Iterable[Mapping[str, Any]]) -> str:
    """``"self_supervised"`` when every query is self-supervised, else ``"judged"``.

    Any judged query means the catalog has real relevance judgments, and those decide (the judged
    rule); an empty query set also falls back to it, which then refuses to bless for lack of results.
    """
    sources = {str(q.get("source", JUDGED)) for q in queries}
    return SELF_SUPERVISED if sources == {SELF_SUPERVISED} else JUDGED


@dataclass(frozen=True)
class KnownItemScore:
    """Query-weighted MRR and Recall@k of one system over the known-item queries of every kind."""

    mrr: float
    recall: float
    n_queries: int
    methods: dict[str, str]  # query kind -> the evaluated method that answered it ("none": scored 0)

    def describe(self) -> str:
        parts = ", ".join(f"{kind}: {method}" for kind, method in self.methods.items())
        return f"{self.n_queries} queries ({parts})"


def _kind_sizes(metrics: Mapping[str, Any]) -> dict[str, int]:
    """Number of evaluated queries per kind, read from the served method of each kind."""
    sizes: dict[str, int] = {}
    for kind, candidates in SERVED_METHODS.items():
        for key in candidates:
            if key in metrics:
                sizes[kind] = int(metrics[key]["n_queries"])
                break
    return sizes


def known_item_score(
    metrics: Mapping[str, Any], methods_by_kind: Mapping[str, tuple[str, ...]], k: int
) -> KnownItemScore:
    """Aggregate per-method results (``modules.evaluation.evaluate_engine``'s output) into one system score.

    The query set is every kind the served system was evaluated on; ``methods_by_kind`` says which
    method answers each kind (the first one present in ``metrics``). A kind without one scores 0.
    Raises ``KeyError`` when no served text or photo result is present (nothing to aggregate).
    """
    sizes = _kind_sizes(metrics)
    if not sizes:
        raise KeyError("the metrics hold no served search result (hybrid, photo or composed)")
    total = sum(sizes.values())
    mrr = recall = 0.0
    used: dict[str, str] = {}
    for kind, n in sizes.items():
        key = next((m for m in methods_by_kind.get(kind, ()) if m in metrics), None)
        used[kind] = key or "none"
        if key is None:
            continue
        mrr += float(metrics[key]["mrr"]) * n
        recall += float(metrics[key][f"recall@{k}"]) * n
    return KnownItemScore(mrr / total if total else 0.0, recall / total if total else 0.0, total, used)


def _settings(params: Mapping[str, Any] | None) -> tuple[float, float, int]:
    if params is None:
        from modules.config import load_params

        params = load_params()
    ev = params.get("evaluation", params)
    return float(ev.get("bless_margin_over_bm25", 0.05)), float(ev.get("regression_tolerance", 0.02)), int(ev.get("k", 10))


def bless_selfsupervised(
    metrics: Mapping[str, Any],
    baseline_metrics: Mapping[str, Any] | None,
    params: Mapping[str, Any] | None = None,
) -> tuple[bool, list[str]]:
    """Bless a run evaluated on self-supervised known-item queries (see the module docstring).

    * the served system's MRR and Recall@k over all known-item queries must each beat BM25's (0 on
      the queries BM25 cannot answer) by ``evaluation.bless_margin_over_bm25``;
    * with a baseline (the latest blessed run's metrics), neither may fall more than
      ``evaluation.regression_tolerance`` below the baseline's served system.
    Returns ``(blessed, reasons)``; the reasons state each check with its numbers.
    """
    margin, tolerance, k = _settings(params)
    try:
        served = known_item_score(metrics, SERVED_METHODS, k)
    except KeyError as exc:
        return False, [f"{exc.args[0]}: nothing to bless"]
    if not any(m in metrics for m in BM25_METHODS["text"]):
        return False, ["no BM25 result to compare against"]
    bm25 = known_item_score(metrics, BM25_METHODS, k)
    ok = True
    reasons = [f"self-supervised known-item rule over {served.describe()}; BM25 scores 0 on non-text queries"]
    for name, cur, ref in (("MRR", served.mrr, bm25.mrr), (f"Recall@{k}", served.recall, bm25.recall)):
        if cur >= ref + margin:
            reasons.append(f"served {name} {cur:.4f} beats BM25 {ref:.4f} by {cur - ref:+.4f} (>= {margin})")
        else:
            ok = False
            reasons.append(f"served {name} {cur:.4f} does not beat BM25 {ref:.4f} by {margin} (diff {cur - ref:+.4f})")
    if not baseline_metrics:
        reasons.append("no blessed baseline yet: regression check skipped")
        return ok, reasons
    try:
        base = known_item_score(baseline_metrics, SERVED_METHODS, k)
    except KeyError:
        reasons.append("baseline has no served search result: regression check skipped")
        return ok, reasons
    for name, cur, ref in (("MRR", served.mrr, base.mrr), (f"Recall@{k}", served.recall, base.recall)):
        if cur >= ref - tolerance:
            reasons.append(f"no {name} regression: {cur:.4f} vs blessed {ref:.4f}, tolerance {tolerance}")
        else:
            ok = False
            reasons.append(f"{name} regression: {cur:.4f} vs blessed {ref:.4f} is below the tolerance {tolerance}")
    return ok, reasons


def bless_for(
    queries: Iterable[Mapping[str, Any]],
    metrics: Mapping[str, Any],
    baseline_metrics: Mapping[str, Any] | None,
    params: Mapping[str, Any] | None = None,
) -> tuple[str, bool, list[str]]:
    """Pick the rule by the evaluated queries' source and apply it: ``(rule, blessed, reasons)``."""
    rule = rule_for(queries)
    decide: Callable[..., tuple[bool, list[str]]] = bless_selfsupervised if rule == SELF_SUPERVISED else bless
    blessed, reasons = decide(metrics, baseline_metrics, params)
    return rule, blessed, reasons


def summary(metrics: Mapping[str, Any], k: int = 10) -> dict[str, float]:
    """Flat known-item aggregates for logging (served and BM25 MRR / Recall@k, query count)."""
    try:
        served = known_item_score(metrics, SERVED_METHODS, k)
    except KeyError:
        return {}
    out = {"served.mrr": served.mrr, f"served.recall_at_{k}": served.recall, "n_queries": float(served.n_queries)}
    if "bm25" in metrics:
        bm25 = known_item_score(metrics, BM25_METHODS, k)
        out.update({"bm25.mrr": bm25.mrr, f"bm25.recall_at_{k}": bm25.recall})
    return out
