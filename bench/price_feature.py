"""Hybrid + LambdaMART NDCG@10 with the re-ranker's ``price`` feature as Transform's ``price_log_z`` (what an engine
built now holds) and as the raw price (an engine saved before it), on one engine build (issue 20).

    python -m bench.price_feature --scale tiny        (or --data DATA_DIR)

Builds the engine on the catalog (``--data``, or the ``--scale`` catalog generated with params' seed into a
temporary directory) with the build path the benchmark uses (``build_benchmark_engines``: embed, index, in-process
Transform analysis), trains LambdaMART on the TRAIN judged queries twice, once per price feature (same seed, same
candidates; only the ``price`` column differs), and prints that column's range, the ranker's NDCG@10 on every
EVAL query per kind, and the price feature's gain. A tree model splits on ranks, and log/z-score is monotone, so the
two should match up to histogram-binning and float ties: the change is the single definition, not a quality change
(docs/benchmark_results.md, "The re-ranker's price feature from Transform").
"""
from __future__ import annotations

import argparse
import json
import tempfile


def _fit_and_score(engine, train: list[dict], evaluation: list[dict], params: dict, seed: int, data_dir: str) -> dict:
    from modules.evaluation.search_eval import evaluate_engine
    from modules.search.rerank_train import build_training_frame, train_ranker

    X, y, groups, qids = build_training_frame(engine, train, data_dir=data_dir)
    engine.ranker = train_ranker(X, y, groups, params=params, seed=seed, qids=qids)
    res = evaluate_engine(engine, evaluation, methods=("hybrid", "hybrid+ltr", "photo+ltr", "composed+ltr"),
                          data_dir=data_dir)
    gain = engine.ranker.feature_importance()
    return {"price_column": {"min": round(float(X["price"].min()), 3), "max": round(float(X["price"].max()), 3)},
            "ndcg@10": {m: round(v["ndcg@10"], 4) for m, v in res.items()},
            "n_queries": {m: v["n_queries"] for m, v in res.items()},
            "price_gain": round(float(gain.get("price", 0.0)), 2), "rerank_kinds": engine.ranker.info.get("rerank_kinds")}


def main(argv: list[str] | None = None) -> None:
    from bench._common import add_data_source, data_dir_from
    from modules.config import load_params, param_seed
    from modules.data.data_io import load_queries
    from modules.evaluation.search_eval import build_benchmark_engines
    from modules.search.rerank_train import split_queries

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_source(ap)
    a = ap.parse_args(argv)
    params = load_params()
    seed = param_seed(params)
    with tempfile.TemporaryDirectory(prefix="pm-price-") as tmp:
        data_dir = data_dir_from(a, tmp, params, seed)
        train, evaluation = split_queries(load_queries(data_dir))
        train = [q for q in train if q.get("source", "judged") == "judged"]
        engine = build_benchmark_engines(data_dir, params, train, seed, with_late=False).engine
        out = {"data": a.data or f"generated {a.scale}, seed {seed}", "n_train": len(train), "n_eval": len(evaluation),
               "price_log_z": _fit_and_score(engine, train, evaluation, params, seed, data_dir)}
        engine.state.price_log_z, engine.state.item_graph = None, None  # an engine saved before the feature
        out["raw_price"] = _fit_and_score(engine, train, evaluation, params, seed, data_dir)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
