"""The evaluator's seeded sample of EVAL queries and its bootstrap confidence intervals."""
from __future__ import annotations

import numpy as np

from modules.evaluation.eval_sample import bootstrap_ci, sample_eval_queries


def _queries(n_text: int, n_image: int) -> list[dict]:
    return [{"qid": f"t{i}", "kind": "text"} for i in range(n_text)] + [
        {"qid": f"i{i}", "kind": "image"} for i in range(n_image)]


def test_sample_is_per_kind_seeded_and_keeps_order() -> None:
    qs = _queries(1000, 30)
    a, b = sample_eval_queries(qs, 100, seed=7), sample_eval_queries(qs, 100, seed=7)
    assert a == b
    assert sum(q["kind"] == "text" for q in a) == 100 and sum(q["kind"] == "image" for q in a) == 30
    assert [q["qid"] for q in a] == [q["qid"] for q in qs if q in a]  # input order kept
    assert sample_eval_queries(qs, 100, seed=8) != a
    assert sample_eval_queries(qs, 0, seed=7) == qs


def test_bootstrap_interval_covers_the_mean_and_narrows_with_more_queries() -> None:
    rng = np.random.default_rng(0)
    small, large = rng.random(50), rng.random(2000)
    lo, hi = bootstrap_ci(small, 1000, 0.95, seed=1)
    assert lo < small.mean() < hi
    lo2, hi2 = bootstrap_ci(large, 1000, 0.95, seed=1)
    assert hi2 - lo2 < (hi - lo) / 3
    assert bootstrap_ci(small, 1000, 0.95, seed=1) == (lo, hi)
    assert all(np.isnan(bootstrap_ci([], 100, 0.95, seed=1)))
