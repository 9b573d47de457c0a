"""Query-encoder parity and latency: TF (XLA bucketed path) vs onnxruntime fp32, int8 and int8_mixed (issue 16).

    python -m bench.text_runtime --serving-dir serving_dir --n 1000 --calls 300

Parity: cosine of each runtime's embedding with the TF encoder's, over the pushed bundle's item titles (up to
``--n``, batch ``encode``) and over ``--n`` seeded title-word queries (``bench.serve_load.bundle_queries``, one
``encode_query`` each, at their real token length); the issue's rule is cos >= 0.99. Latency: single-query
``encode_query`` median / p95 over ``--calls`` distinct queries (cache off), in wall time and in this thread's
CPU time (onnxruntime runs on the calling thread with one intra-op thread; other processes do not inflate it).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from modules.encoders.text_runtime import PRECISIONS


def _latency(fn: Callable[[str], object], queries: list[str]) -> dict:
    for q in queries[:5]:
        fn(q)
    wall, cpu = [], []
    for q in queries:
        t, c = time.perf_counter(), time.thread_time()
        fn(q)
        cpu.append((time.thread_time() - c) * 1000)
        wall.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": round(float(np.median(wall)), 2), "p95_ms": round(float(np.percentile(wall, 95)), 2),
            "cpu_p50_ms": round(float(np.median(cpu)), 2), "cpu_p95_ms": round(float(np.percentile(cpu, 95)), 2)}


def _parity(cos: np.ndarray) -> dict:
    return {"cos_min": round(float(cos.min()), 4), "cos_mean": round(float(cos.mean()), 4),
            "below_0.99": int((cos < 0.99).sum())}


def main(argv: list[str] | None = None) -> int:
    from bench.serve_load import bundle_queries
    from modules.encoders.text import get_text_encoder
    from modules.encoders.text_runtime import OnnxTextEncoder, cached_export

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--serving-dir", type=Path, required=True)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    a = ap.parse_args(argv)
    version = (a.serving_dir / "LATEST").read_text().strip()
    titles = pd.read_parquet(a.serving_dir / version / "search" / "items.parquet")["title"].astype(str).tolist()
    titles = titles[: a.n]
    queries = bundle_queries(a.serving_dir, a.n + a.calls, seed=7)
    parity_q, timed_q = queries[: a.n], queries[a.n:]
    tf_enc = get_text_encoder()
    ref_t, ref_q = tf_enc.encode(titles), tf_enc.encode(parity_q)
    out = {"n_titles": len(titles), "n_queries": len(parity_q), "calls": len(timed_q),
           "tf": _latency(tf_enc.encode_query, timed_q)}
    for precision in a.precisions:
        enc = OnnxTextEncoder(cached_export(tf_enc, precision), cache_size=0)
        single = np.stack([enc.encode_query(q) for q in parity_q])
        out[precision] = {"titles": _parity((enc.encode(titles) * ref_t).sum(1)),
                          "queries": _parity((single * ref_q).sum(1)), **_latency(enc.encode_query, timed_q)}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
