"""Where the time of one search goes, stage by stage, on a pushed bundle (in process, and over loopback HTTP).

    python -m bench.search_stages --serving-dir /tmp/serving_full --data /tmp/pm_full --queries 300
    python -m bench.search_stages --serving-dir DIR --data DATA --kind image --queries 100
    python -m bench.search_stages --serving-dir DIR --data DATA --http --queries 300

In process (default): loads the LATEST bundle's engine and re-ranker (the server's loader), sends queries one at a
time after a warm-up through the default hybrid path, and times each stage by wrapping the engine's parts. Stages
nest (the TF-IDF and exact dense scores run inside "candidate features"); every figure is EXCLUSIVE of the stages
inside it, so the rows add up to the call. ``--kind text`` sends the bundle's title-word queries (``--distinct`` of
them, as ``bench.serve_load`` does, so the query-embedding cache sees realistic repeats) or the EVAL text queries
(``--eval-queries``); ``--kind image`` sends catalog photos re-encoded as 500-px JPEGs (decoded as the server does).

``--http`` also starts the server (one uvicorn worker) on a free loopback port and sends the same queries one at a
time; it splits the client-side latency into the engine call (``/search/*`` answers carry ``latency_ms``, measured
from the route's start to the response model being built) and the rest (HTTP, uvicorn, FastAPI, JSON).
Prints the median and p95 per stage in ms and each stage's share of the mean call.
"""
from __future__ import annotations

import argparse
import io
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

OTHER = "other (hygiene, sorting, glue)"


class StageClock:
    """Accumulates EXCLUSIVE wall time per stage for the current call (a stage's figure leaves out the stages that
    ran inside it); ``calls`` keeps one dict per finished call."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock   # time.perf_counter (wall) or time.thread_time (this thread's CPU)
        self.current: dict[str, float] = defaultdict(float)
        self.calls: list[dict[str, float]] = []
        self._children: list[float] = []   # per open stage: time spent in stages nested inside it

    def wrap(self, owner: Any, attr: str, stage: str) -> None:
        inner: Callable[..., Any] = getattr(owner, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            self._children.append(0.0)
            t0 = self.clock()
            try:
                return inner(*args, **kwargs)
            finally:
                elapsed = (self.clock() - t0) * 1000.0
                self.current[stage] += elapsed - self._children.pop()
                if self._children:
                    self._children[-1] += elapsed

        setattr(owner, attr, timed)

    def finish(self, total_ms: float) -> None:
        call = dict(self.current)
        call[OTHER] = total_ms - sum(call.values())
        call["total"] = total_ms
        self.calls.append(call)
        self.current = defaultdict(float)


def instrument(engine: Any, clock: Callable[[], float] = time.perf_counter) -> StageClock:
    """Wrap the engine's stages (module functions where the engine calls them, methods on its parts)."""
    from modules.search import engine as engine_mod
    from modules.search import features as features_mod
    from modules.search import retrieve as retrieve_mod

    clock = StageClock(clock)
    s = engine.state
    for owner, attr, stage in (
            (s.parser, "parse", "query parsing"), (engine_mod, "allowed_rows", "filters (allowed rows)"),
            (s.text_encoder, "encode_query", "MiniLM query encoding"),
            (engine_mod, "encode_query", "other query vectors (LiT head, fusion, photo)"),
            (retrieve_mod, "photo_similarity", "photo similarity (colour features, all rows)"),
            (s.bm25, "scores", "BM25 (whole catalog)"), (s.text_index, "search", "HNSW text"),
            (s.image_index, "search", "HNSW image"), (s.fused_index, "search", "HNSW fused"),
            (engine_mod, "retrieve", "retrieve glue (top-k of scores)"), (engine_mod, "fuse_lists", "RRF"),
            (s.tfidf, "scores_rows", "TF-IDF (candidates only)"), (s.text_index, "score", "exact dense scores"),
            (s.image_index, "score", "exact dense scores"), (s.fused_index, "score", "exact dense scores"),
            (features_mod, "intent_columns", "intent match columns"),
            (engine_mod, "candidate_columns", "candidate features (rest)"),
            (engine_mod, "rerank_candidates", "LambdaMART re-rank"), (engine_mod, "hybrid_response", "respond")):
        clock.wrap(owner, attr, stage)
    if hasattr(s.image_encoder, "encode_images"):
        clock.wrap(s.image_encoder, "encode_images", "image encoder (photo)")
    return clock


def text_queries(args: argparse.Namespace) -> list[str]:
    from bench._common import eval_text_queries
    from bench.serve_load import bundle_queries

    if args.eval_queries:
        return eval_text_queries(args.data)
    return bundle_queries(Path(args.serving_dir), args.distinct)


def photo_jpegs(data_dir: str | Path, n: int, side: int = 500) -> list[bytes]:
    """``n`` catalog photos, resized to ``side`` px on the long side and JPEG-encoded (a shopper's upload)."""
    from PIL import Image

    paths = sorted((Path(data_dir) / "images").glob("*.*"))[:n]
    out = []
    for p in paths:
        img = Image.open(p).convert("RGB")
        scale = side / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def in_process(engine: Any, kind: str, queries: list[Any], warmup: int, cpu: bool = False) -> StageClock:
    from types import SimpleNamespace

    from modules.data.images import load_image

    decoder = SimpleNamespace(load=load_image)

    def call(q: Any) -> None:
        if kind == "text":
            engine.search_text(q)
        else:
            engine.search_image(decoder.load(q))

    for q in queries[:warmup]:
        call(q)
    clock = instrument(engine, time.thread_time if cpu else time.perf_counter)
    clock.wrap(decoder, "load", "decode JPEG")
    for q in queries[warmup:]:
        start = clock.clock()
        call(q)
        clock.finish((clock.clock() - start) * 1000.0)
    return clock


def over_http(serving_dir: Path, kind: str, queries: list[Any], warmup: int) -> list[dict[str, float]]:
    """Client latency and the answer's ``latency_ms`` of each query, one at a time, against one uvicorn worker."""
    import httpx

    from bench.serve_load import free_port, start_server, wait_ready

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(serving_dir.resolve(), port, 1, Path("/tmp") / f"search_stages-{port}.log")
    calls = []
    try:
        wait_ready(url, proc, 1, 600.0)
        with httpx.Client(base_url=url, timeout=30.0) as client:
            for i, q in enumerate(queries):
                t0 = time.perf_counter()
                if kind == "text":
                    r = client.post("/search/text", json={"query": q})
                else:
                    r = client.post("/search/image", files={"image": ("q.jpg", q, "image/jpeg")})
                total = (time.perf_counter() - t0) * 1000.0
                r.raise_for_status()
                if i >= warmup:
                    route = float(r.json()["latency_ms"])
                    calls.append({"route (engine + response model)": route,
                                  "HTTP + uvicorn + FastAPI + JSON": total - route, "total": total})
    finally:
        import os

        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
    return calls


def print_table(calls: list[dict[str, float]]) -> None:
    stages = list(dict.fromkeys(k for call in calls for k in call))
    mean_total = statistics.fmean(c["total"] for c in calls)
    print("| stage | median ms | p95 ms | mean ms | share of mean |")
    print("|---|---|---|---|---|")
    for stage in sorted(stages, key=lambda s: (s == "total", -statistics.fmean(c.get(s, 0.0) for c in calls))):
        values = np.array([c.get(stage, 0.0) for c in calls])
        print(f"| {stage} | {np.median(values):.2f} | {np.percentile(values, 95):.2f} | {values.mean():.2f} | "
              f"{values.mean() / mean_total:.0%} |")


def main(argv: list[str] | None = None) -> int:
    from bench._common import latest_bundle_or_exit
    from modules.config import load_params
    from modules.settings import load_settings
    from serving.app import limit_math_threads
    from serving.bundle_loading import load_components

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serving-dir", required=True)
    ap.add_argument("--data", required=True, help="the DATA_DIR the bundle was built from (EVAL queries, photos)")
    ap.add_argument("--kind", choices=("text", "image"), default="text")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--distinct", type=int, default=5000, help="distinct title-word queries (as bench.serve_load)")
    ap.add_argument("--eval-queries", action="store_true", help="send the EVAL text queries instead")
    ap.add_argument("--http", action="store_true", help="also time the same queries over loopback HTTP")
    ap.add_argument("--cpu", action="store_true",
                    help="in process, time each stage by this thread's CPU time rather than wall time (a figure that "
                         "other processes on a busy machine do not inflate; onnxruntime runs on the calling thread "
                         "with encoders.text.runtime.threads: 1)")
    ap.add_argument("--math-threads", type=int, default=None,
                    help="BLAS/OpenMP threads in this process (default: serving.math_threads, as the server sets)")
    args = ap.parse_args(argv)
    limit_math_threads(load_settings().serving.math_threads if args.math_threads is None else args.math_threads)
    version, version_dir = latest_bundle_or_exit(args.serving_dir)
    n = args.queries + args.warmup
    queries: list[Any] = text_queries(args) if args.kind == "text" else photo_jpegs(args.data, n)
    queries = (queries * (1 + n // len(queries)))[:n]
    t0 = time.perf_counter()
    engine, _ = load_components(version_dir, load_params())  # exactly as the server does
    load_s = time.perf_counter() - t0
    clock = in_process(engine, args.kind, queries, args.warmup, args.cpu)
    reranks = engine.ranker is not None and engine.ranker.applies_to(args.kind)
    label = f"EVAL {args.kind}" if args.eval_queries and args.kind == "text" else args.kind
    print(f"bundle {version}: {engine.n_rows:,} items, loaded in {load_s:.1f} s; {len(clock.calls)} {label} "
          f"queries in process, one at a time, default hybrid path, {'CPU' if args.cpu else 'wall'} time "
          f"({'with' if reranks else 'without'} the LambdaMART re-ranker)")
    print_table(clock.calls)
    if args.http:
        del engine
        calls = over_http(Path(args.serving_dir), args.kind, queries, args.warmup)
        print(f"\nthe same {len(calls)} queries over loopback HTTP (1 uvicorn worker, one client, one at a time)")
        print_table(calls)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
