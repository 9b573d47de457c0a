"""HNSW recall@k against exact search, and single-thread search time, on a pushed bundle's real text index.

    python -m bench.hnsw_bundle --serving-dir /tmp/serving_full3 --data /tmp/pm_full --queries 200

Loads ``search/text_index.faiss`` (the HNSW graph the server searches, whose flat storage holds the normalised
vectors) from the LATEST bundle, encodes EVAL text queries with the bundled MiniLM encoder, and compares the
HNSW top-k with an exact ``IndexFlatIP`` over the same vectors at each efSearch. Search is timed one query per
call with ``faiss.omp_set_num_threads(1)``. Prints recall@k, median and p95 microseconds per efSearch.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    import faiss

    from bench._common import eval_text_queries, latest_bundle_or_exit
    from modules.encoders.text import TextEncoder
    from modules.search.dense import recall_at_k, storage_view

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serving-dir", required=True)
    ap.add_argument("--data", required=True, help="the DATA_DIR the bundle was built from (its EVAL text queries)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--ef", default="64,128,256", help="comma-separated efSearch values")
    args = ap.parse_args(argv)
    version, version_dir = latest_bundle_or_exit(args.serving_dir)
    search_dir = version_dir / "search"
    index = faiss.read_index(str(search_dir / "text_index.faiss"))
    vectors = np.array(storage_view(index), dtype=np.float32)
    texts = eval_text_queries(args.data, limit=args.queries)
    queries = TextEncoder().encode(texts).astype(np.float32)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, args.k)
    hnsw = faiss.downcast_index(index.index) if hasattr(index, "index") else faiss.downcast_index(index)
    faiss.omp_set_num_threads(1)
    print(f"bundle {version}: {index.ntotal:,} text vectors (dim {vectors.shape[1]}), {len(texts)} EVAL text "
          f"queries, k={args.k}, one thread")
    print("| efSearch | recall@k vs exact | median µs | p95 µs |")
    print("|---|---|---|---|")
    for ef in (int(e) for e in args.ef.split(",")):
        hnsw.hnsw.efSearch = ef
        found, times = [], []
        for q in queries:
            t0 = time.perf_counter()
            _, ids = index.search(q.reshape(1, -1), args.k)
            times.append((time.perf_counter() - t0) * 1e6)
            found.append(ids[0])
        print(f"| {ef} | {recall_at_k(np.stack(found), truth):.4f} | {np.median(times):.0f} | "
              f"{np.percentile(times, 95):.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
