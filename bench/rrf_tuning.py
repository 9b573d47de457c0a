"""What catalog-tuned RRF weights do to a built engine's EVAL text queries (``modules/search/rrf_tuning.py``).

    .venv/bin/python -m bench.rrf_tuning --engine <root>/IndexBuilder/search_engine/<id>/<engine dir> --data DATA
    .venv/bin/python -m bench.rrf_tuning --engine SERVING_DIR/<version>/search --data DATA

Loads the engine as the server does (``SearchEngine.load`` with params.yaml and the served query encoder), scores
the hybrid order without the re-ranker on every EVAL text query of ``DATA/queries.jsonl`` with the weights it has,
tunes the weights from params.yaml's on its held-out TRAIN text queries (``tune_rrf_weights``, the IndexBuilder
step) and scores the EVAL queries again. An engine that was tuned at build starts from params.yaml's weights here
too, so the two rows compare params.yaml's weights with the tuned ones.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    from modules.config import load_params, param_seed
    from modules.data.data_io import load_queries
    from modules.encoders.text_runtime import served_query_encoder
    from modules.search import SearchEngine
    from modules.search.rrf_tuning import fused_query, mean_ndcg, set_text_weights, tune_rrf_weights

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", required=True, help="a saved engine directory (IndexBuilder artifact or bundle search/)")
    ap.add_argument("--data", required=True, help="the catalog directory the engine was built from (queries.jsonl)")
    args = ap.parse_args(argv)
    if not (Path(args.engine) / "engine.json").is_file():
        print(f"{args.engine}: not a saved engine (no engine.json)", file=sys.stderr)
        return 2
    params = load_params()
    seed = param_seed(params)
    t0 = time.perf_counter()
    engine = SearchEngine.load(args.engine, params=params, text_encoder=served_query_encoder(params))
    s = engine.state
    set_text_weights(s, dict(params["retrieval"]["rrf_weights"]))   # start from params.yaml's, as at build
    queries = load_queries(args.data)
    train = [q for q in queries if q.get("split") == "train"]
    evals = [q for q in queries if q.get("split") == "eval" and q.get("kind", "text") == "text" and q.get("text")]
    fused = [f for f in (fused_query(s, str(q["text"]), q["relevance"]) for q in evals) if f is not None]
    print(f"engine loaded and {len(fused)} EVAL text queries retrieved in {time.perf_counter() - t0:.1f} s")
    before = mean_ndcg(s, fused, dict(s.retrieval.rrf_weights))
    t0 = time.perf_counter()
    report = tune_rrf_weights(s, train, params, seed)
    seconds = time.perf_counter() - t0
    after = mean_ndcg(s, fused, dict(s.retrieval.rrf_weights))
    print(f"tuning: {json.dumps(report)} ({seconds:.1f} s)")
    print("| weights | EVAL text NDCG@10, hybrid without re-ranker |\n|---|---|")
    print(f"| params.yaml {dict(params['retrieval']['rrf_weights'])} | {before:.4f} |")
    print(f"| tuned {dict(s.retrieval.rrf_weights)} | {after:.4f} ({after - before:+.4f}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
