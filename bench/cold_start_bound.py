"""How far can any content-only model get on new-SKU recommendations of a *generated* catalog? Oracle bounds.

    python -m bench.cold_start_bound --data /tmp/pm_full --max-users 5000

The generator (``modules.data.catalog.interactions``) draws each event's item from a Zipf popularity over a random
permutation of ranks, then its user by fit to hidden tastes (category, colour, style, price band, gender). A new SKU
has no events before the cutoff, so its popularity is unobservable to every model; only the taste fit is. This
script ranks the new SKUs for each held-out user with the generator's hidden truth (``truth_items.csv``,
``truth_users.csv``), under the evaluation protocol of ``modules.evaluation.recommend`` (temporal split at the
manifest's ``cutoff_ts``, users with training history and held-out new-SKU events, the same seeded user sample):

- **taste oracle**: the user's true favourite categories, colours and styles, gender and price band (what a perfect
  content model could learn from history), no popularity;
- **popularity oracle**: the new SKUs' true popularity ranks (known only after launch), the same list for everyone;
- **taste x popularity oracle**: both, i.e. the generator's own odds up to its sampling noise.

Prints New-SKU Recall@10 among the new SKUs for each, next to which the measured content model can be read.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _member(values: pd.Series, favourites: str) -> np.ndarray:
    fav = set(str(favourites).split("|")) if isinstance(favourites, str) and favourites else set()
    return values.isin(fav).to_numpy(dtype=np.float64)


def taste_scores(new_items: pd.DataFrame, user: pd.Series, band: float, off_taste: float) -> np.ndarray:
    """Generator-shaped fit of every new item to one user's hidden tastes (favourite -> 1, other -> off_taste)."""
    def fav(col: str, key: str) -> np.ndarray:
        return off_taste + (1.0 - off_taste) * _member(new_items[col], user[key])

    price_fit = np.exp(-0.5 * ((float(user["price_center"]) - new_items["price_pct"].to_numpy(np.float64)) / band) ** 2)
    g = new_items["gender"].to_numpy()
    gender_fit = np.where((g == "unisex") | (g == user["gender"]), 1.0, 0.15)
    return fav("category", "fav_categories") * fav("color", "fav_colors") * fav("style", "fav_styles") * price_fit * gender_fit


def recall_at_k(scores: np.ndarray, relevant: np.ndarray, k: int) -> float:
    top = np.argsort(-scores, kind="stable")[:k]
    return float(np.isin(top, relevant).sum()) / float(len(relevant))


def main(argv: list[str] | None = None) -> int:
    from modules.config import load_params

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a generated DATA_DIR (needs truth_items.csv, truth_users.csv)")
    ap.add_argument("--max-users", type=int, default=5000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--off-taste", type=float, default=0.05,
                    help="weight of a non-favourite category/colour/style (the generator's preference floor is 0.02-0.04)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    data = Path(args.data)
    if not (data / "truth_items.csv").is_file() or not (data / "truth_users.csv").is_file():
        print(f"{data}: no truth_items.csv / truth_users.csv (only generated catalogs have the hidden truth)",
              file=sys.stderr)
        return 2
    params = load_params()
    gen = params.get("generate", {})
    zipf_s = float(gen.get("zipf_exponent", 1.1))
    band = float(gen.get("price_band_width", 0.25))
    cutoff = int(json.loads((data / "manifest.json").read_text())["cutoff_ts"])
    items = pd.read_csv(data / "truth_items.csv")
    users = pd.read_csv(data / "truth_users.csv").set_index("user_id")
    inter = pd.read_csv(data / "interactions.csv")
    train, test = inter[inter["ts"] < cutoff], inter[inter["ts"] >= cutoff]

    new = items[items["is_new"].astype(bool)].reset_index(drop=True)
    new_pos = {iid: j for j, iid in enumerate(new["item_id"])}
    # the evaluation's user set: training history and held-out events, a seeded sample of them
    eligible = sorted(set(test["user_id"]) & set(train["user_id"]))
    if len(eligible) > args.max_users:
        pick = np.random.default_rng(args.seed).choice(len(eligible), size=args.max_users, replace=False)
        eligible = [eligible[i] for i in sorted(pick)]
    targets = (test[test["item_id"].isin(new_pos)].groupby("user_id")["item_id"]
               .agg(lambda s: np.array(sorted({new_pos[i] for i in s}))))
    popularity = new["pop_rank"].to_numpy(np.float64) ** -zipf_s
    rng = np.random.default_rng(args.seed)
    out: dict[str, list[float]] = {"random": [], "taste oracle": [], "popularity oracle": [],
                                   "taste x popularity oracle": []}
    for user in eligible:
        if user not in targets.index:
            continue
        rel = targets[user]
        taste = taste_scores(new, users.loc[user], band, args.off_taste)
        out["random"].append(recall_at_k(rng.random(len(new)), rel, args.k))
        out["taste oracle"].append(recall_at_k(taste, rel, args.k))
        out["popularity oracle"].append(recall_at_k(popularity, rel, args.k))
        out["taste x popularity oracle"].append(recall_at_k(taste * popularity, rel, args.k))
    n = len(out["random"])
    summary = {name: float(np.mean(v)) for name, v in out.items()}
    print(f"{data}: {len(new):,} new SKUs, {n:,} sampled users with held-out new-SKU events "
          f"(of {len(eligible):,} sampled), Zipf s={zipf_s}")
    print(f"| ranking of the new SKUs | New-SKU Recall@{args.k} (among new SKUs) |")
    print("|---|---|")
    for name, value in summary.items():
        print(f"| {name} | {value:.4f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"n_users": n, "n_new": len(new), **summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
