"""A seeded sample of EVAL queries and bootstrap confidence intervals, so evaluation time stays bounded at scale.

The sample is drawn per query kind (text, image, composed), so every retriever keeps its queries; the same
seed and the same eval split give the same sample, run after run (the blessing's regression check compares
like with like). A metric's interval is the percentile bootstrap over queries.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def sample_eval_queries(queries: Sequence[Mapping[str, Any]], per_kind: int, seed: int) -> list[Mapping[str, Any]]:
    """At most ``per_kind`` queries of each kind, drawn without replacement with ``seed``; input order is kept."""
    if per_kind <= 0:
        return list(queries)
    rng = np.random.default_rng(seed)
    keep: set[int] = set()
    for kind in sorted({str(q.get("kind", "text")) for q in queries}):
        idx = [i for i, q in enumerate(queries) if str(q.get("kind", "text")) == kind]
        keep.update(idx if len(idx) <= per_kind else rng.choice(idx, per_kind, replace=False).tolist())
    return [q for i, q in enumerate(queries) if i in keep]


def bootstrap_ci(values: Sequence[float], n_boot: int, level: float, seed: int) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (``level`` e.g. 0.95); (nan, nan) when empty."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, arr.size, size=(n_boot, arr.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))
