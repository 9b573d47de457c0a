"""How the ``low_confidence`` flag of a pushed bundle behaves (re-calibrated on TRAIN queries when asked).

    python -m bench.low_confidence --serving-dir serving_dir --data data [--recalibrate]

Loads the bundle ``LATEST`` points to, optionally calibrates the threshold on the catalog's TRAIN text queries
against seeded gibberish (what the pipeline's IndexBuilder does), then prints the share of fresh gibberish and of
EVAL text queries it flags, plus a few example queries. Nothing is written to the bundle.
"""
from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

EXAMPLES = ("qzxv blorptang fnord", "asdfgh", "minimalist white sneakers", "red floral dress under 50", "the")


def main(argv: list[str] | None = None) -> None:
    from bench._common import latest_bundle_or_exit
    from modules.config import load_params, param_seed
    from modules.data.data_io import load_queries
    from modules.evaluation.benchmark import describe_low_confidence, low_confidence_report
    from modules.search import SearchEngine, calibrate_from_train_queries
    from modules.search.rerank_train import split_queries

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serving-dir", required=True)
    ap.add_argument("--data", required=True, help="the catalog the bundle was built from (its queries.jsonl)")
    ap.add_argument("--recalibrate", action="store_true", help="calibrate on TRAIN queries first (in memory)")
    ap.add_argument("--params", default=None)
    a = ap.parse_args(argv)
    params = load_params(a.params)
    seed = param_seed(params)
    version, version_dir = latest_bundle_or_exit(a.serving_dir)
    manifest = json.loads((version_dir / "manifest.json").read_text())
    engine = SearchEngine.load(version_dir / manifest["components"]["index"], params=params)
    train, held_out = split_queries(load_queries(a.data))
    if a.recalibrate:
        params.setdefault("retrieval", {})["low_confidence_threshold"] = None
        calibrate_from_train_queries(engine, train, params, seed=seed)
    report = low_confidence_report(engine, held_out, seed=seed)
    print(f"bundle {version}")
    print(describe_low_confidence(report))
    for q in EXAMPLES:
        print(f"  {q!r:32s} best dense cosine {engine.query_confidence(q):.3f}  "
              f"low_confidence={engine.search_text(q, top_k=1).low_confidence}")


if __name__ == "__main__":
    main()
