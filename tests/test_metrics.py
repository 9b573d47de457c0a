"""modules.evaluation.metrics must agree with ranx (the reference implementation) on random graded data."""
from __future__ import annotations

import math

import numpy as np
import pytest
from ranx import Qrels, Run, evaluate

from modules.evaluation import metrics


def _random_case(seed: int, n_queries: int = 60, n_docs: int = 40) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, list[tuple[str, float]]] = {}
    for q in range(n_queries):
        qid = f"q{q}"
        docs = [f"d{i}" for i in range(n_docs)]
        n_rel = int(rng.integers(1, 12))
        rel_docs = rng.choice(n_docs, size=n_rel, replace=False)
        qrels[qid] = {docs[i]: int(rng.integers(1, 4)) for i in rel_docs}
        # Some queries also judge a document as 0 (not relevant); it must not count as relevant.
        unjudged = [d for d in docs if d not in qrels[qid]]
        if rng.random() < 0.3:
            qrels[qid][unjudged[int(rng.integers(0, len(unjudged)))]] = 0
        n_ret = int(rng.integers(3, 30))  # sometimes fewer than k results
        ret = rng.choice(n_docs, size=n_ret, replace=False)
        scores = rng.permutation(n_ret).astype(float) + rng.random(n_ret) * 0.5  # distinct scores
        run[qid] = [(docs[i], float(s)) for i, s in zip(ret, scores, strict=True)]
    return run, qrels


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 5, 10])
def test_evaluate_run_agrees_with_ranx(seed: int, k: int) -> None:
    run, qrels = _random_case(seed)
    ours = metrics.evaluate_run(run, qrels, k=k)
    ranx_qrels = Qrels({q: {d: g for d, g in rel.items() if g > 0} for q, rel in qrels.items()})
    ranx_run = Run({q: dict(pairs) for q, pairs in run.items()})
    ref = evaluate(ranx_qrels, ranx_run, [f"ndcg@{k}", f"mrr@{k}", f"recall@{k}", f"precision@{k}", f"map@{k}"])
    assert ours["n_queries"] == len(qrels)
    for ours_key, ref_key in [
        (f"ndcg@{k}", f"ndcg@{k}"),
        ("mrr", f"mrr@{k}"),
        (f"recall@{k}", f"recall@{k}"),
        (f"precision@{k}", f"precision@{k}"),
        (f"map@{k}", f"map@{k}"),
    ]:
        assert ours[ours_key] == pytest.approx(ref[ref_key], abs=1e-6), ours_key


def test_per_query_agrees_with_ranx() -> None:
    run, qrels = _random_case(7, n_queries=25)
    ranx_qrels = Qrels({q: {d: g for d, g in rel.items() if g > 0} for q, rel in qrels.items()})
    ranx_run = Run({q: dict(pairs) for q, pairs in run.items()})
    ref = evaluate(ranx_qrels, ranx_run, ["ndcg@10", "map@10"], return_mean=False)
    for i, qid in enumerate(ranx_qrels.keys()):  # ranx orders its per-query scores by its own qid order
        ranked = metrics.rank_by_score(run[qid])
        assert metrics.ndcg_at_k(ranked, qrels[qid], 10) == pytest.approx(ref["ndcg@10"][i], abs=1e-6)
        assert metrics.map_at_k(ranked, qrels[qid], 10) == pytest.approx(ref["map@10"][i], abs=1e-6)


def test_hand_computed_values() -> None:
    rel = {"a": 3, "b": 1, "c": 0}
    ranked = ["x", "b", "a", "c"]
    dcg = 1 / math.log2(3) + 3 / math.log2(4)
    idcg = 3 / math.log2(2) + 1 / math.log2(3)
    assert metrics.ndcg_at_k(ranked, rel, 10) == pytest.approx(dcg / idcg)
    assert metrics.mrr(ranked, rel) == pytest.approx(0.5)
    assert metrics.mrr(ranked, rel, k=1) == 0.0
    assert metrics.recall_at_k(ranked, rel, 2) == pytest.approx(0.5)
    assert metrics.precision_at_k(ranked, rel, 4) == pytest.approx(0.5)
    assert metrics.map_at_k(ranked, rel, 10) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert metrics.ndcg_at_k(["a", "b"], rel, 2) == pytest.approx(1.0)


def test_no_relevant_and_missing_queries() -> None:
    assert metrics.ndcg_at_k(["a"], {"a": 0}, 10) == 0.0
    out = metrics.evaluate_run({"q1": [("a", 1.0)]}, {"q1": {"a": 2}, "q2": {"b": 1}, "q3": {}}, k=10)
    assert out["n_queries"] == 2  # q3 has nothing relevant; q2 is missing from the run and scores 0
    assert out["ndcg@10"] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        metrics.ndcg_at_k(["a"], {"a": 1}, 0)


def test_latency_summary() -> None:
    lat = list(range(1, 101))
    s = metrics.latency_summary(lat)
    assert s["p50"] == pytest.approx(50.5)
    assert s["p95"] == pytest.approx(np.percentile(lat, 95))
    assert s["p99"] == pytest.approx(np.percentile(lat, 99))
    assert s["mean"] == pytest.approx(50.5)
    assert math.isnan(metrics.latency_summary([])["p95"])
    with pytest.raises(ValueError):
        metrics.latency_summary([1.0, -2.0])
