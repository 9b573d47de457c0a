"""Personalised search, measured on a pushed bundle loaded by the server's own loader (serving.bundle_manager).

1. EVAL user-issued queries (modules/evaluation/user_queries.py: users never trained on; the query is a later item's
   category, optionally one more column, judged by what that user did after the cut-off): NDCG@k of the served
   hybrid + LambdaMART answer with the user's two-tower context (as /search/text with ``user_id`` builds it,
   serving/personalise.py, online store off: the bundle's snapshot history) and without it (same engine, same ranker).
2. Ordinary EVAL judged queries (no user): NDCG@k of the served answer with the bundle's ranker (trained with the
   user queries mixed in) against a ranker trained on the judged TRAIN queries only, as RankerTrainer trains it
   without ``ranking.user_queries`` (same engine, same params, same seed), swapped into the same engine.

  TF_USE_LEGACY_KERAS=1 PYTHONPATH=. python -m bench.personalised_search --serving-dir DIR --data DATA [--out f.json]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

ORDINARY_METHODS = ("hybrid+ltr", "photo+ltr", "composed+ltr")


def _ndcg_pair(bundle: Any, tower: Any, queries: list[dict], k: int, ev: dict, seed: int) -> dict[str, Any]:
    """Mean NDCG@k of the user queries with and without the user's context (and without the ranker), and the
    percentile bootstrap interval (``evaluation.bootstrap_samples``, ``ci_level``) of the paired difference."""
    from modules.evaluation.eval_sample import bootstrap_ci
    from modules.evaluation.metrics import ndcg_at_k
    from modules.search.personalise import user_history
    from serving.personalise import snapshot_history

    on, off, plain, ms = [], [], [], []
    for q in queries:
        t0 = time.perf_counter()
        scores = tower.scores(q["user_id"], user_history(snapshot_history(bundle, q["user_id"]), None))
        ms.append((time.perf_counter() - t0) * 1000.0)
        ctx = {"two_tower": scores} if scores is not None else None
        engine = bundle.engine
        on.append(ndcg_at_k(engine.search_text(q["text"], top_k=k, context=ctx).item_ids, q["relevance"], k))
        off.append(ndcg_at_k(engine.search_text(q["text"], top_k=k).item_ids, q["relevance"], k))
        plain.append(ndcg_at_k(engine.search_text(q["text"], top_k=k, rerank=False).item_ids, q["relevance"], k))
    diff = np.asarray(on) - np.asarray(off)
    return {"n_queries": len(queries), "personalised": float(np.mean(on)), "not_personalised": float(np.mean(off)),
            "no_ranker": float(np.mean(plain)), "user_tower_ms_median": float(np.median(ms)),
            "diff_ci": bootstrap_ci(diff, int(ev["bootstrap_samples"]), float(ev["ci_level"]), seed),
            "better": int((diff > 0).sum()), "worse": int((diff < 0).sum())}


def _judged_only_ranker(engine: Any, data_dir: str, params: dict, seed: int) -> Any:
    """The ranker RankerTrainer trains without user queries: judged TRAIN queries, same params and seed."""
    from modules.data.data_io import load_queries
    from modules.search.rerank_train import build_training_frame, train_ranker

    train = load_queries(data_dir, split="train")
    train = [q for q in train if q.get("source", "judged") == "judged"] or train
    X, y, groups, qids = build_training_frame(engine, train, data_dir=data_dir)
    return train_ranker(X, y, groups, params=params, seed=seed, qids=qids)


def _ordinary(engine: Any, queries: list[dict], k: int, data_dir: str) -> dict[str, float]:
    from modules.evaluation.search_eval import evaluate_engine

    res = evaluate_engine(engine, queries, k=k, methods=ORDINARY_METHODS, data_dir=data_dir)
    return {m: float(r[f"ndcg@{k}"]) for m, r in res.items()} | {f"n_{m}": int(r["n_queries"]) for m, r in res.items()}


def run(serving_dir: str, data_dir: str, params_path: str | None = None) -> dict[str, Any]:
    from modules.bundle import read_latest
    from modules.config import load_params, param_seed
    from modules.data.data_io import load_interactions, load_items, load_queries, read_cutoff
    from modules.evaluation.user_queries import build_user_queries
    from serving.bundle_manager import BundleManager
    from serving.personalise import bundle_tower

    params = load_params(params_path)
    seed, k = param_seed(params), int(params["evaluation"]["k"])
    version = read_latest(serving_dir)
    if version is None:
        raise SystemExit(f"{serving_dir}: no LATEST bundle")
    bundle = BundleManager(serving_dir, params).build(version, Path(serving_dir) / version)
    tower = bundle_tower(bundle)
    if tower is None:
        raise SystemExit(f"bundle {version} has no two-tower model: nothing to personalise")
    ranker = bundle.engine.ranker
    queries = build_user_queries(load_interactions(data_dir), load_items(data_dir), read_cutoff(data_dir), params, seed)
    user_eval = [q for q in queries if q["split"] == "eval"]
    leaked = [q["qid"] for q in user_eval if q["qid"] in ranker.trained_qids]
    if leaked:
        raise SystemExit(f"the bundle's ranker trained on EVAL user queries {leaked[:5]}")
    judged_eval = load_queries(data_dir, split="eval")
    out: dict[str, Any] = {"bundle": version, "k": k, "ranker_info": ranker.info,
                           "two_tower_importance": ranker.feature_importance().get("two_tower", 0.0),
                           "n_user_train_in_ranker": sum(q.startswith("uq_") for q in ranker.trained_qids)}
    out["user_eval"] = _ndcg_pair(bundle, tower, user_eval, k, params["evaluation"], seed)
    out["ordinary_eval"] = _ordinary(bundle.engine, judged_eval, k, data_dir)
    baseline = _judged_only_ranker(bundle.engine, data_dir, params, seed)
    bundle.engine.ranker = baseline
    out["ordinary_eval_judged_only_ranker"] = _ordinary(bundle.engine, judged_eval, k, data_dir)
    out["user_eval_judged_only_ranker"] = _ndcg_pair(bundle, tower, user_eval, k, params["evaluation"], seed)
    bundle.engine.ranker = ranker
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--serving-dir", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--params", default=None)
    ap.add_argument("--out", default=None, help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    out = run(args.serving_dir, args.data, args.params)
    k = out["k"]
    u, o, ob = out["user_eval"], out["ordinary_eval"], out["ordinary_eval_judged_only_ranker"]
    print(f"bundle {out['bundle']}: two_tower importance (gain) {out['two_tower_importance']:.1f}, "
          f"{out['n_user_train_in_ranker']} user-issued TRAIN queries in the ranker")
    print(f"EVAL user-issued queries (n={u['n_queries']}): NDCG@{k} personalised {u['personalised']:.4f}, "
          f"not personalised {u['not_personalised']:.4f} (no ranker {u['no_ranker']:.4f}); difference "
          f"{u['personalised'] - u['not_personalised']:+.4f}, bootstrap CI [{u['diff_ci'][0]:+.4f}, "
          f"{u['diff_ci'][1]:+.4f}], better on {u['better']}, worse on {u['worse']}; "
          f"user tower median {u['user_tower_ms_median']:.2f} ms")
    uj = out["user_eval_judged_only_ranker"]
    print(f"  the same queries with a judged-only ranker: personalised {uj['personalised']:.4f}, "
          f"not personalised {uj['not_personalised']:.4f}")
    for m in ORDINARY_METHODS:
        if m in o:
            print(f"ordinary EVAL {m} (n={o['n_' + m]}): NDCG@{k} {o[m]:.4f} with the bundle's ranker, "
                  f"{ob.get(m, float('nan')):.4f} with a judged-only ranker (delta {o[m] - ob.get(m, float('nan')):+.4f})")
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
