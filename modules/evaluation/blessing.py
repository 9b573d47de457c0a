"""Blessing rules: which rule applies to an evaluation, and the self-supervised (known-item) rule.

Two query sets reach the evaluator:

* **judged** queries (the synthetic catalog): graded relevance lists. Their rule is
  ``bless`` (below): the served text method must beat BM25 NDCG@k by
  ``evaluation.bless_margin_over_bm25`` and must not regress against the baseline.
* **self-supervised** known-item queries (an ingested catalog, ``source == "self_supervised"``, made by
  ``modules.data.selfsup``): title-word text queries and augmented product photos whose answer is the item
  they were made from. Each kind is judged **on its own** (``evaluation.selfsup`` in params.yaml):

  - **text**: the served text path (hybrid [+ LambdaMART]) must reach BM25's MRR and Recall@k plus
    ``text_margin_over_bm25``. Title-word queries copy words of the answer's title, which is BM25's home
    ground by construction, so the shipped margin is a *non-inferiority* margin (negative): the product may
    not be clearly worse than keyword search. On its own that could pass a hybrid whose dense half is
    noise (BM25 carries it), so **the text encoder alone** (the ``text`` method) must also reach
    ``dense_min_share_of_bm25`` of BM25's MRR: a working sentence encoder does, a random one scores near
    chance (measured in docs/benchmark_results.md, "Blessing (issue 20)").
  - **photo**: the served photo path (photo [+ LambdaMART]) must reach the floors ``photo_min_mrr`` and
    ``photo_min_recall``. BM25 cannot answer a photo, so photos are no longer blended into a text score.

With a baseline (the last blessed run of the same catalog, see ``components/retrieval_evaluator``), no kind's
served MRR or Recall@k may fall more than ``evaluation.regression_tolerance`` below the baseline's.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from modules.evaluation.search_eval import SERVED_TEXT_METHODS, served_method
from modules.settings import EvaluationSelfsupSettings, EvaluationSettings, load_section

JUDGED = "judged"
SELF_SUPERVISED = "self_supervised"

# What the service answers each query kind with, best first (LambdaMART is attached when evaluated).
SERVED_METHODS: dict[str, tuple[str, ...]] = {
    "text": SERVED_TEXT_METHODS,
    "image": ("photo+ltr", "photo"),
    "composed": ("composed+ltr", "composed"),
}
DENSE_TEXT = "text"  # the text encoder alone (modules.evaluation.search_eval.METHODS)


def rule_for(queries: Iterable[Mapping[str, Any]]) -> str:
    """``"self_supervised"`` when every query is self-supervised, else ``"judged"``.

    Any judged query means the catalog has real relevance judgments, and those decide (the judged
    rule); an empty query set also falls back to it, which then refuses to bless for lack of results.
    """
    sources = {str(q.get("source", JUDGED)) for q in queries}
    return SELF_SUPERVISED if sources == {SELF_SUPERVISED} else JUDGED


def served(metrics: Mapping[str, Any], kind: str) -> str | None:
    """The evaluated method that answers ``kind`` the way the service does, or None."""
    return next((m for m in SERVED_METHODS[kind] if m in metrics), None)


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
    ev = _evaluation(params)
    margin, tolerance, k = ev.bless_margin_over_bm25, ev.regression_tolerance, ev.k
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


def _evaluation(params: Mapping[str, Any] | None) -> EvaluationSettings:
    """The typed ``evaluation`` section: ``params`` (the whole params dict or the section itself) over params.yaml's."""
    return load_section("evaluation", None if params is None else params.get("evaluation", params))


def _at_least(label: str, cur: float, floor: float, what: str) -> tuple[bool, str]:
    ok = cur >= floor
    return ok, f"{label} {cur:.4f} {'>=' if ok else '<'} {floor:.4f} ({what})"


def _text_checks(metrics: Mapping[str, Any], cfg: EvaluationSelfsupSettings, k: int) -> tuple[bool, list[str]]:
    key = served(metrics, "text")
    if key is None or "bm25" not in metrics:
        return False, ["text: no served text or BM25 result: nothing to compare"]
    margin, checks = cfg.text_margin_over_bm25, []
    for name, col in (("MRR", "mrr"), (f"Recall@{k}", f"recall@{k}")):
        ref = float(metrics["bm25"][col])
        checks.append(_at_least(f"text: {key} {name}", float(metrics[key][col]), ref + margin,
                                f"BM25 {ref:.4f} {margin:+.2f}"))
    if DENSE_TEXT not in metrics:
        checks.append((False, "text: no result for the text encoder alone ('text' method)"))
    else:
        share, bm25 = cfg.dense_min_share_of_bm25, float(metrics["bm25"]["mrr"])
        checks.append(_at_least("text: encoder-only MRR", float(metrics[DENSE_TEXT]["mrr"]), share * bm25,
                                f"{share:.2f} x BM25 MRR"))
    return all(ok for ok, _ in checks), [why for _, why in checks]


def _photo_checks(metrics: Mapping[str, Any], cfg: EvaluationSelfsupSettings, k: int) -> tuple[bool, list[str]]:
    key = served(metrics, "image")
    if key is None:
        return True, ["photo: no photo queries evaluated (a text-only catalog): photo check skipped"]
    checks = [_at_least(f"photo: {key} MRR", float(metrics[key]["mrr"]), cfg.photo_min_mrr, "floor"),
              _at_least(f"photo: {key} Recall@{k}", float(metrics[key][f"recall@{k}"]), cfg.photo_min_recall,
                        "floor")]
    return all(ok for ok, _ in checks), [why for _, why in checks]


def _regression(metrics: Mapping[str, Any], baseline: Mapping[str, Any], tolerance: float, k: int
                ) -> tuple[bool, list[str]]:
    ok, reasons = True, []
    for kind in ("text", "image"):
        cur_key, base_key = served(metrics, kind), served(baseline, kind)
        if cur_key is None or base_key is None:
            continue
        for name, col in (("MRR", "mrr"), (f"Recall@{k}", f"recall@{k}")):
            cur, ref = float(metrics[cur_key][col]), float(baseline[base_key][col])
            good = cur >= ref - tolerance
            ok &= good
            reasons.append(f"{kind} {name} {'no regression' if good else 'regression'}: {cur:.4f} vs blessed "
                           f"{ref:.4f}, tolerance {tolerance}")
    return ok, reasons


def bless_selfsupervised(
    metrics: Mapping[str, Any],
    baseline_metrics: Mapping[str, Any] | None,
    params: Mapping[str, Any] | None = None,
) -> tuple[bool, list[str]]:
    """Bless a run evaluated on self-supervised known-item queries (see the module docstring).

    Returns ``(blessed, reasons)``; the reasons state each check with its numbers.
    """
    ev = _evaluation(params)
    cfg, tolerance, k = ev.selfsup, ev.regression_tolerance, ev.k
    if served(metrics, "text") is None and served(metrics, "image") is None:
        return False, ["the metrics hold no served search result (hybrid or photo): nothing to bless"]
    text_ok, reasons = _text_checks(metrics, cfg, k)
    photo_ok, photo_reasons = _photo_checks(metrics, cfg, k)
    reasons = ["self-supervised known-item rule: text and photo queries judged separately", *reasons, *photo_reasons]
    ok = text_ok and photo_ok
    if not baseline_metrics:
        return ok, [*reasons, "no blessed baseline for this catalog: regression check skipped"]
    reg_ok, reg_reasons = _regression(metrics, baseline_metrics, tolerance, k)
    return ok and reg_ok, reasons + reg_reasons


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


def summary(metrics: Mapping[str, Any], k: int) -> dict[str, float]:
    """Flat known-item figures for logging: served text / photo, encoder-only and BM25 MRR and Recall@k."""
    out: dict[str, float] = {}
    names = {"text": served(metrics, "text"), "photo": served(metrics, "image"), "encoder_only": DENSE_TEXT,
             "bm25": "bm25"}
    for label, key in names.items():
        if key and key in metrics:
            out[f"{label}.mrr"] = float(metrics[key]["mrr"])
            out[f"{label}.recall_at_{k}"] = float(metrics[key][f"recall@{k}"])
    return out
