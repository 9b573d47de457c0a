"""Query-encoder parity and latency: TF (XLA bucketed path) vs onnxruntime fp32 vs int8 (issue 16).

    python -m bench.text_runtime --serving-dir serving_dir --n 1000 --calls 200

Parity: cosine of each runtime's embedding with the TF encoder's, over the pushed bundle's item titles (up to
``--n``). Latency: single-query ``encode_query`` median / p95 over ``--calls`` distinct queries (cache off).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _latency(fn, queries: list[str]) -> dict:
    for q in queries[:5]:
        fn(q)
    times = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": round(float(np.median(times)), 2), "p95_ms": round(float(np.percentile(times, 95)), 2)}


def main(argv: list[str] | None = None) -> int:
    from modules.encoders.text import get_text_encoder
    from modules.encoders.text_runtime import OnnxTextEncoder, cached_export

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--serving-dir", type=Path, required=True)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--calls", type=int, default=200)
    a = ap.parse_args(argv)
    version = (a.serving_dir / "LATEST").read_text().strip()
    titles = pd.read_parquet(a.serving_dir / version / "search" / "items.parquet")["title"].astype(str).tolist()
    titles = titles[: a.n]
    queries = [f"{' '.join(t.lower().split()[:3])} {i}" for i, t in enumerate(titles * (a.calls // len(titles) + 1))]
    queries = queries[: a.calls]
    tf_enc = get_text_encoder()
    ref = tf_enc.encode(titles)
    out = {"n_titles": len(titles), "calls": len(queries), "tf": _latency(tf_enc.encode_query, queries)}
    for precision in ("fp32", "int8"):
        enc = OnnxTextEncoder(cached_export(tf_enc, precision), cache_size=0)
        cos = (enc.encode(titles) * ref).sum(1)
        out[precision] = {"cos_min": round(float(cos.min()), 4), "cos_mean": round(float(cos.mean()), 4),
                          **_latency(enc.encode_query, queries)}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
