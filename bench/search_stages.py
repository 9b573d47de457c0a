"""Where the time of one ``search_text`` call goes, stage by stage, on a pushed bundle.

    python -m bench.search_stages --serving-dir /tmp/serving_full --data /tmp/pm_full --queries 300

Loads the LATEST bundle's engine and re-ranker in this process (the server's loader), sends EVAL text queries one at a
time (after a warm-up) through the default hybrid path, and times each stage by wrapping the engine's parts:
query parsing, the MiniLM query encoder, BM25 over the whole catalog, TF-IDF of the candidates, the three HNSW
searches, RRF, the LambdaMART re-ranker, and whatever is left (candidate features, sorting, the response).
Prints the median and p95 per stage in ms and each stage's share of the mean call.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


class StageClock:
    """Accumulates wall time per stage for the current call; ``calls`` keeps one dict per finished call."""

    def __init__(self) -> None:
        self.current: dict[str, float] = defaultdict(float)
        self.calls: list[dict[str, float]] = []

    def wrap(self, owner: Any, attr: str, stage: str) -> None:
        inner: Callable[..., Any] = getattr(owner, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.current[stage] += (time.perf_counter() - t0) * 1000.0

        setattr(owner, attr, timed)

    def finish(self, total_ms: float) -> None:
        call = dict(self.current)
        call["other (features, sort, response)"] = total_ms - sum(call.values())
        call["total"] = total_ms
        self.calls.append(call)
        self.current = defaultdict(float)


def instrument(engine: Any) -> StageClock:
    from modules.search import rerank as rerank_stage
    from modules.search import rrf as rrf_stage

    clock = StageClock()
    clock.wrap(engine.parser, "parse", "query parsing")
    clock.wrap(engine.text_encoder, "encode_query", "MiniLM query encoding")
    clock.wrap(engine.bm25, "scores", "BM25 (whole catalog)")
    clock.wrap(engine.tfidf, "scores_rows", "TF-IDF (candidates only)")
    clock.wrap(engine.text_index, "search", "HNSW text")
    clock.wrap(engine.image_index, "search", "HNSW image")
    clock.wrap(engine.fused_index, "search", "HNSW fused")
    clock.wrap(engine.fusion, "query_vector", "fusion query projection")
    clock.wrap(rrf_stage, "rrf", "RRF")
    clock.wrap(rerank_stage, "apply_reranker", "LambdaMART re-rank")
    return clock


def main(argv: list[str] | None = None) -> int:
    from bench._common import eval_text_queries, latest_bundle_or_exit
    from modules.config import load_params
    from serving.bundle_loading import load_components

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serving-dir", required=True)
    ap.add_argument("--data", required=True, help="the DATA_DIR the bundle was built from (its EVAL text queries)")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    args = ap.parse_args(argv)
    version, version_dir = latest_bundle_or_exit(args.serving_dir)
    texts = eval_text_queries(args.data)
    t0 = time.perf_counter()
    engine, _ = load_components(version_dir, load_params())  # exactly as the server does
    load_s = time.perf_counter() - t0
    texts = (texts * (1 + (args.queries + args.warmup) // len(texts)))[: args.queries + args.warmup]
    for q in texts[: args.warmup]:
        engine.search_text(q)
    clock = instrument(engine)
    for q in texts[args.warmup:]:
        start = time.perf_counter()
        engine.search_text(q)
        clock.finish((time.perf_counter() - start) * 1000.0)
    stages = list(dict.fromkeys(k for call in clock.calls for k in call))
    mean_total = statistics.fmean(c["total"] for c in clock.calls)
    reranks = engine.ranker is not None and engine.ranker.applies_to("text")
    print(f"bundle {version}: {engine.n_rows:,} items, loaded in {load_s:.1f} s; "
          f"{len(clock.calls)} EVAL text queries, one at a time, default hybrid path "
          f"({'with' if reranks else 'without'} the LambdaMART re-ranker for text queries)")
    print("| stage | median ms | p95 ms | share of mean |")
    print("|---|---|---|---|")
    for stage in sorted(stages, key=lambda s: (s == "total", -statistics.fmean(c.get(s, 0.0) for c in clock.calls))):
        values = np.array([c.get(stage, 0.0) for c in clock.calls])
        print(f"| {stage} | {np.median(values):.2f} | {np.percentile(values, 95):.2f} | "
              f"{values.mean() / mean_total:.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
