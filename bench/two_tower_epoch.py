"""Time one two-tower training epoch (``net.fit`` over the training slice) and the early-stopping evaluation.

    python -m bench.two_tower_epoch --items 20000 --users 8000 --interactions 200000 --max-batch-size 1024

Seeded synthetic data (Zipf item popularity, 12 categories, 40 brands, 768-d random content: the shape of
text + image), so no catalog is needed and any scale can be timed; the model and its params.yaml settings are
the pipeline's (``recommend.two_tower``), with ``--max-batch-size`` / ``--epochs`` overriding. Prints the
batch size chosen, seconds per ``fit`` epoch and per evaluation, and the full-scale (900K training rows)
projection. Timings on a shared machine are noisy: run it twice.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def synthetic(n_items: int, n_users: int, n_inter: int, dim: int, seed: int):  # noqa: ANN201
    import pandas as pd

    rng = np.random.default_rng(seed)
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)],
                          "category": rng.integers(0, 12, n_items).astype(str),
                          "brand": rng.integers(0, 40, n_items).astype(str),
                          "price": np.round(rng.lognormal(3.5, 0.6, n_items), 2)})
    pop = 1.0 / np.arange(1, n_items + 1) ** 1.1
    inter = pd.DataFrame({"user_id": [f"u{u}" for u in rng.integers(0, n_users, n_inter)],
                          "item_id": items["item_id"].to_numpy()[rng.choice(n_items, n_inter, p=pop / pop.sum())],
                          "event": rng.choice(["view", "click", "add_to_cart", "purchase"], n_inter,
                                              p=[0.7, 0.2, 0.065, 0.035]),
                          "ts": np.sort(rng.integers(1_700_000_000, 1_715_000_000, n_inter))})
    content = rng.normal(size=(n_items, dim)).astype(np.float32)
    return items, inter, content / np.linalg.norm(content, axis=1, keepdims=True)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=20000)
    ap.add_argument("--users", type=int, default=8000)
    ap.add_argument("--interactions", type=int, default=200000)
    ap.add_argument("--content-dim", type=int, default=768)
    ap.add_argument("--max-batch-size", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)
    from modules.config import load_params
    from modules.recommend import two_tower as tt
    from modules.recommend.two_tower_model import TwoTowerNet

    params = load_params()
    p = params["recommend"]["two_tower"]
    p.update(epochs=args.epochs, early_stopping_patience=args.epochs + 1)
    if args.max_batch_size:
        p["max_batch_size"] = args.max_batch_size
    items, inter, content = synthetic(args.items, args.users, args.interactions, args.content_dim, args.seed)
    fit_s: list[float] = []
    eval_s: list[float] = []

    def timed(fn, store: list[float]):  # noqa: ANN001, ANN202
        def wrapper(*a, **k):  # noqa: ANN002, ANN003, ANN202
            t0 = time.perf_counter()
            out = fn(*a, **k)
            store.append(time.perf_counter() - t0)
            return out
        return wrapper

    TwoTowerNet.fit = timed(TwoTowerNet.fit, fit_s)
    tt._recall_at_k = timed(tt._recall_at_k, eval_s)
    t0 = time.perf_counter()
    model = tt.train_two_tower(inter, items, content, params, seed=args.seed)
    total = time.perf_counter() - t0
    n_train = model.metrics["n_train_examples"]
    steady = fit_s[1:] or fit_s  # the first epoch also traces the tf.functions
    out = {"items": args.items, "interactions": args.interactions, "n_train_examples": n_train,
           "batch_size": model.metrics["batch_size"], "fit_s_per_epoch": [round(s, 2) for s in fit_s],
           "eval_s_per_epoch": [round(s, 2) for s in eval_s], "total_s": round(total, 1),
           "us_per_example_steady": round(float(np.mean(steady)) / n_train * 1e6, 2),
           "loss": [round(h["loss"], 4) for h in model.metrics["history"]]}
    out["projected_fit_s_per_epoch_900k"] = round(out["us_per_example_steady"] * 900_000 / 1e6, 1)
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
