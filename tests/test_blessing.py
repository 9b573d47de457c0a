"""Blessing rules: the rule follows the query source; the self-supervised known-item rule's arithmetic and checks."""
from __future__ import annotations

from typing import Any

import pytest

from modules import blessing as B
from modules import evaluation as E

PARAMS = {"evaluation": {"k": 10, "bless_margin_over_bm25": 0.05, "regression_tolerance": 0.02}}


def _m(mrr: float, recall: float, n: int) -> dict[str, Any]:
    return {"mrr": mrr, "recall@10": recall, "ndcg@10": mrr, "n_queries": n}


def _selfsup(bm25: float = 0.80, hybrid: float = 0.65, ltr: float | None = 0.75, photo: float = 0.90,
             n_text: int = 300, n_image: int = 150) -> dict[str, Any]:
    """Per-method results shaped like evaluate_engine's (MRR and Recall@10 set equal for brevity)."""
    res = {"bm25": _m(bm25, bm25, n_text), "hybrid": _m(hybrid, hybrid, n_text), "photo": _m(photo, photo, n_image)}
    if ltr is not None:
        res["hybrid+ltr"] = _m(ltr, ltr, n_text)
    return res


def test_rule_follows_the_query_source() -> None:
    ss = {"source": "self_supervised"}
    assert B.rule_for([ss, ss]) == B.SELF_SUPERVISED
    assert B.rule_for([ss, {"source": "judged"}]) == B.JUDGED   # any judged query: judgments decide
    assert B.rule_for([ss, {}]) == B.JUDGED                      # no source field: the synthetic default
    assert B.rule_for([]) == B.JUDGED


def test_known_item_score_weights_kinds_and_scores_bm25_zero_on_photos() -> None:
    res = _selfsup(bm25=0.80, ltr=0.75, photo=0.90, n_text=300, n_image=100)
    served = B.known_item_score(res, B.SERVED_METHODS, 10)
    assert served.methods == {"text": "hybrid+ltr", "image": "photo"}
    assert served.n_queries == 400
    assert served.mrr == pytest.approx((0.75 * 300 + 0.90 * 100) / 400)
    bm25 = B.known_item_score(res, B.BM25_METHODS, 10)
    assert bm25.methods == {"text": "bm25", "image": "none"}
    assert bm25.recall == pytest.approx(0.80 * 300 / 400)
    # without LambdaMART the plain hybrid answers text; a photo re-ranker takes precedence when evaluated
    res = _selfsup(ltr=None)
    res["photo+ltr"] = _m(0.95, 0.95, 150)
    assert B.known_item_score(res, B.SERVED_METHODS, 10).methods == {"text": "hybrid", "image": "photo+ltr"}


def test_selfsupervised_rule_blesses_the_product_over_bm25() -> None:
    # the measured failure case: BM25 wins on title-word queries alone, the product wins over all queries
    res = _selfsup(bm25=0.818, hybrid=0.675, ltr=0.782, photo=0.90)
    ok, why = B.bless_selfsupervised(res, None, PARAMS)
    assert ok, why
    assert any("served MRR" in r and "beats BM25" in r for r in why)
    assert any("Recall@10" in r and "beats BM25" in r for r in why)
    assert any("no blessed baseline" in r for r in why)
    # the judged (NDCG, text-only) rule would refuse the same run, and still does
    assert not E.bless(res, None, PARAMS)[0]


def test_selfsupervised_rule_refuses_weak_runs_and_regressions() -> None:
    # photo search that barely works cannot carry a weaker text path past BM25
    ok, why = B.bless_selfsupervised(_selfsup(bm25=0.80, ltr=0.70, photo=0.20), None, PARAMS)
    assert not ok and any("does not beat BM25" in r for r in why)
    # Recall must beat BM25 too, not just MRR
    res = _selfsup(bm25=0.80, ltr=0.80, photo=0.90)
    res["hybrid+ltr"]["recall@10"] = 0.40
    ok, why = B.bless_selfsupervised(res, None, PARAMS)
    assert not ok and any(r.startswith("served Recall@10") and "does not beat" in r for r in why)
    # regression against the previous blessed run (same aggregate), within and beyond the tolerance
    base = _selfsup(ltr=0.78, photo=0.92)
    ok, why = B.bless_selfsupervised(_selfsup(ltr=0.77, photo=0.91), base, PARAMS)
    assert ok and any("no MRR regression" in r for r in why)
    ok, why = B.bless_selfsupervised(_selfsup(ltr=0.70, photo=0.85), base, PARAMS)
    assert not ok and any(r.startswith("MRR regression") for r in why)


def test_selfsupervised_rule_needs_results() -> None:
    assert B.bless_selfsupervised({"bm25": _m(0.5, 0.5, 10)}, None, PARAMS)[0] is False
    ok, why = B.bless_selfsupervised({"hybrid": _m(0.9, 0.9, 10)}, None, PARAMS)
    assert not ok and why == ["no BM25 result to compare against"]


def test_bless_for_dispatches_and_keeps_the_judged_rule() -> None:
    res = _selfsup(bm25=0.818, hybrid=0.675, ltr=0.782, photo=0.90)
    ss = [{"source": "self_supervised"}]
    assert B.bless_for(ss, res, None, PARAMS)[:2] == (B.SELF_SUPERVISED, True)
    rule, ok, why = B.bless_for([{"source": "judged"}], res, None, PARAMS)
    assert (rule, ok, why) == (B.JUDGED, *E.bless(res, None, PARAMS))
    summary = B.summary(res, 10)
    assert summary["n_queries"] == 450 and summary["served.mrr"] > summary["bm25.mrr"]
