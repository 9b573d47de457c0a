"""Choose the attribute taste's settings without looking at the held-out window: a pseudo cold-start split of the
*training* window.

    python -m bench.taste_validation --data /tmp/pm_full --embeddings EMB --max-users 5000 \
        --set recommend.taste.smoothing=0.2 --set recommend.taste.smoothing=1.0

The training window (``ts < cutoff_ts``) is split again at the time of its last ``--holdout-fraction`` of events:
products created after that pseudo-cutoff with no earlier events play the new SKUs, and the content recommender
(cosine + attribute taste, ``modules.recommend.content``) is fitted on the earlier events only and scored like
``modules.evaluation.recommend`` scores it (New-SKU Recall@10 among the new SKUs, warm NDCG@10). Nothing after the
real cutoff is read, so a setting picked here can then be measured once on the real held-out window.

Each ``--set dotted.key=value`` is one candidate (params.yaml's value is always measured first). Prints one line per
candidate.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def pseudo_cutoff(ts: np.ndarray, holdout_fraction: float) -> int:
    """The time at which the last ``holdout_fraction`` of the training window's events begin."""
    return int(np.quantile(ts, 1.0 - holdout_fraction))


def with_setting(params: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``params`` with ``dotted`` (e.g. ``recommend.taste.smoothing``) set to ``value``."""
    out = copy.deepcopy(params)
    node = out
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node[key]
    if leaf not in node:
        raise SystemExit(f"params.yaml has no {dotted}")
    node[leaf] = value
    return out


def main(argv: list[str] | None = None) -> None:
    from modules.config import load_params, param_seed
    from modules.data.data_io import (
        load_embedding_rows,
        load_interactions,
        load_items,
        load_manifest,
        load_photo_colours,
    )
    from modules.evaluation.recommend import evaluate_recommenders

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--embeddings", required=True, help="an EmbeddingGen artifact dir of the same catalog")
    ap.add_argument("--max-users", type=int, default=None)
    ap.add_argument("--holdout-fraction", type=float, default=0.25)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    params = load_params(None)
    items, inter = load_items(args.data), load_interactions(args.data)
    train = inter.loc[inter["ts"] < int(load_manifest(args.data)["cutoff_ts"])]
    cut = pseudo_cutoff(train["ts"].to_numpy(), args.holdout_fraction)
    ids = items["item_id"].astype(str).tolist()
    text, image, color = load_embedding_rows(args.embeddings, ids)
    colours = load_photo_colours(args.embeddings, ids)
    candidates = [("params.yaml", params)]
    for s in args.set:
        key, raw = s.split("=", 1)
        candidates.append((s, with_setting(params, key, yaml.safe_load(raw))))
    print(f"pseudo-cutoff {cut}: {int((train['ts'] < cut).sum())} fit events, {int((train['ts'] >= cut).sum())} "
          f"pseudo-held-out events", flush=True)
    for label, p in candidates:
        t = time.perf_counter()
        r = evaluate_recommenders(items, train, cut, text, image, color, p, param_seed(p), models=("content",),
                                  max_users=args.max_users, photo_colours=colours)
        m = r["models"]["content"]
        print(json.dumps({"candidate": label, "n_new_items": r["n_new_items"], "n_users_cold": r["n_users_cold_items"],
                          "new_sku_recall@10_among_new": round(m["cold_recall@10_among_new"], 4),
                          "warm_ndcg@10": round(m["ndcg@10"], 4),
                          "weights": {k: round(v, 3) for k, v in (r.get("taste_weights") or {}).items()},
                          "seconds": round(time.perf_counter() - t, 1)}), flush=True)


if __name__ == "__main__":
    main()
