"""Calibration of ``low_confidence``: the best-dense-cosine threshold that separates real (TRAIN-split) queries from
seeded gibberish, stored on the engine and saved in ``calibration.json``."""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from modules.config import param_seed
from modules.settings import load_section

if TYPE_CHECKING:
    from modules.search.engine import SearchEngine

log = logging.getLogger(__name__)


def gibberish_queries(n: int, seed: int | None = None) -> list[str]:
    """``n`` seeded nonsense queries (1-3 random letter strings of 4-9 letters) for calibrating ``low_confidence``
    (``seed`` None: params.yaml's)."""
    rng = np.random.default_rng(param_seed() if seed is None else seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return [" ".join("".join(rng.choice(letters, size=int(rng.integers(4, 10)))) for _ in range(int(rng.integers(1, 4))))
            for _ in range(n)]


def sample_query_texts(queries: Sequence[Mapping[str, Any]], n: int, seed: int | None = None,
                       kind: str | None = None) -> list[str]:
    """A seeded sample of at most ``n`` distinct non-empty query texts (of one ``kind`` when given), sorted."""
    texts = sorted({str(q.get("text") or "").strip() for q in queries
                    if kind is None or q.get("kind", "text") == kind} - {""})
    if not texts or n <= 0:
        return []
    pick = np.random.default_rng(param_seed() if seed is None else seed).choice(len(texts), size=min(n, len(texts)), replace=False)
    return [texts[i] for i in sorted(pick)]


def calibrate_from_train_queries(engine: SearchEngine, train_queries: Sequence[Mapping[str, Any]],
                                 params: Mapping[str, Any], seed: int | None = None) -> float | None:
    """Calibrate ``low_confidence`` on TRAIN-split text queries against seeded gibberish, unless params fix it.

    ``retrieval.low_confidence_threshold`` set in params wins; with no text queries (nothing to calibrate on) the
    threshold stays unset and no result is flagged. Returns the threshold in use."""
    seed = param_seed(params) if seed is None else seed
    hp = load_section("retrieval", params.get("retrieval"))
    if hp.low_confidence_threshold is not None:
        return engine.low_conf_threshold
    n = hp.low_confidence_calibration_queries
    real = sample_query_texts(train_queries, n, seed)
    if not real:
        log.warning("low_confidence: no TRAIN text queries to calibrate on; results are never flagged")
        return None
    thr = calibrate_low_confidence(engine, real, gibberish_queries(len(real), seed))
    log.info("low_confidence threshold %.4f calibrated on %d train queries vs %d gibberish", thr, len(real), len(real))
    return thr


def calibrate_low_confidence(engine: SearchEngine, real_queries: Sequence[str], gibberish_queries: Sequence[str]
                             ) -> float:
    """Pick the best-dense-cosine threshold that best separates real from gibberish queries (balanced accuracy),
    store it on the engine (saved in calibration.json) and return it. Use TRAIN-split queries only."""
    real = np.array([engine.query_confidence(q) for q in real_queries if q.strip()])
    junk = np.array([engine.query_confidence(q) for q in gibberish_queries if q.strip()])
    if len(real) == 0 or len(junk) == 0:
        raise ValueError("calibration needs at least one real and one gibberish query")
    values = np.unique(np.concatenate([real, junk]))
    candidates = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    best_thr, best_acc = float(candidates[0]), -1.0
    for thr in candidates:
        acc = 0.5 * ((real >= thr).mean() + (junk < thr).mean())
        if acc > best_acc + 1e-12:
            best_thr, best_acc = float(thr), float(acc)
    engine.low_conf_threshold = best_thr
    return best_thr
