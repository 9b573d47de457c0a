"""Hybrid NDCG@10 on the EVAL text queries with the bundle's query encoder and with another ONNX runtime (issue 16's
second parity rule: a faster encoder may not move it by more than 0.005).

    python -m bench.encoder_ndcg --serving-dir /tmp/serving_full --data /tmp/pm_full \\
        --runtime ~/.cache/pixelmatch/text_runtime/<hash>-int8_mixed

Loads the LATEST bundle with the server's loader, answers every EVAL text query (default hybrid path, re-ranker
on) with the bundle's encoder, then again with ``--runtime``'s (an ``export_onnx`` directory; the LiT head and
fusion vectors follow, since they are computed from the text vector), and prints both mean NDCG@10, their
difference and how many top-10 lists changed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def _ranked(engine, queries: list[dict]) -> list[list[str]]:
    return [[str(r.item_id) for r in engine.search_text(q["text"], top_k=10).results] for q in queries]


def main(argv: list[str] | None = None) -> int:
    from bench._common import latest_bundle_or_exit
    from modules.config import load_params
    from modules.data.data_io import load_queries
    from modules.encoders.text_runtime import OnnxTextEncoder
    from modules.evaluation.metrics import ndcg_at_k
    from serving.bundle_loading import load_components

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serving-dir", required=True)
    ap.add_argument("--data", required=True, help="the DATA_DIR the bundle was built from (queries.jsonl)")
    ap.add_argument("--runtime", type=Path, required=True, help="the other encoder's export_onnx directory")
    ap.add_argument("--limit", type=int, default=None, help="at most this many EVAL text queries")
    a = ap.parse_args(argv)
    _, version_dir = latest_bundle_or_exit(a.serving_dir)
    queries = [q for q in load_queries(a.data, split="eval") if q["kind"] == "text" and q.get("text")][: a.limit]
    engine, _ = load_components(version_dir, load_params())
    base_name = getattr(engine.state.text_encoder, "precision", type(engine.state.text_encoder).__name__)
    base = _ranked(engine, queries)
    other = OnnxTextEncoder(a.runtime, cache_size=0)
    engine.state.text_encoder = other
    alt = _ranked(engine, queries)
    nd_base = np.array([ndcg_at_k(r, q["relevance"], 10) for r, q in zip(base, queries, strict=True)])
    nd_alt = np.array([ndcg_at_k(r, q["relevance"], 10) for r, q in zip(alt, queries, strict=True)])
    print(json.dumps({"queries": len(queries), "bundle_encoder": base_name, "other_encoder": other.precision,
                      "ndcg@10_bundle": round(float(nd_base.mean()), 5), "ndcg@10_other": round(float(nd_alt.mean()), 5),
                      "difference": round(float(nd_alt.mean() - nd_base.mean()), 5),
                      "top10_lists_changed": int(sum(b != o for b, o in zip(base, alt, strict=True)))}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
