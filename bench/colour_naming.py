"""How often the photo's named dominant colour agrees with a real catalog's colour label.

    python -m bench.colour_naming                          # the whole fashion sample (9,583 photos)
    python -m bench.colour_naming --half tune --sample 1500  # seeded subsample of the tuning half (iterate here)
    python -m bench.colour_naming --half holdout            # the other seeded half (report; never tune on it)
    python -m bench.colour_naming --rows 500 --json out.json

Names each photo with ``color_features_and_name`` (what EmbeddingGen and the search engine use, so the same name the
hybrid's colour intent matches), normalises the sample's ``baseColour`` label to the same palette with
``normalize_color_name`` (labels outside the palette, such as "Multi", are skipped), and prints per label: the number
of items, the share named correctly and the names given most often. "in top 2" counts a photo as right when its
label is one of the (up to) two colours ``named_colors`` reports. ``--half`` splits the rows by a seeded permutation
(``--seed``) into a tuning half and a held-out half, so settings tuned on one can be reported on the other. This is the ceiling on colour-from-photos
search when titles carry no colour (the ``--strip-colour`` check of ``bench/fashion_benchmark.py``).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


HALVES = ("all", "tune", "holdout")


def select_rows(data: list[dict], half: str = "all", seed: int = 15, sample: int | None = None) -> list[dict]:
    """``half`` of the rows by a seeded permutation (first half "tune", second "holdout"), then the first
    ``sample`` of that half (same permutation order) when given."""
    if half not in HALVES:
        raise ValueError(f"half must be one of {HALVES}, got {half!r}")
    order = np.random.default_rng(seed).permutation(len(data))
    cut = len(order) // 2
    order = {"all": order, "tune": order[:cut], "holdout": order[cut:]}[half]
    return [data[i] for i in order[:sample]]


def name_accuracy(catalog_csv: Path, images_dir: Path, rows: int | None = None, params: dict | None = None,
                  half: str = "all", seed: int = 15, sample: int | None = None) -> dict:
    """{label: {"n", "correct", "top2", "names"}} plus "overall" and "overall_top2", over the rows whose label
    maps onto the 16 basic colour names."""
    from modules.data.images import load_image
    from modules.encoders.color_naming import named_colors, normalize_color_name

    with catalog_csv.open(newline="", encoding="utf-8") as f:
        data = [r for i, r in enumerate(csv.DictReader(f)) if rows is None or i < rows]
    names: dict[str, Counter] = defaultdict(Counter)
    top2: Counter = Counter()
    skipped = 0
    for r in select_rows(data, half, seed, sample):
        label = normalize_color_name(r.get("baseColour", ""))
        photo = images_dir / f"{r['id']}.jpg"
        if label is None or not photo.is_file():
            skipped += 1
            continue
        given = [name for name, _ in named_colors(load_image(photo), 2, params)]
        names[label][given[0]] += 1
        top2[label] += label in given
    per_label = {label: {"n": sum(c.values()), "correct": c[label] / sum(c.values()),
                         "top2": top2[label] / sum(c.values()), "names": dict(c.most_common(4))}
                 for label, c in names.items()}
    n = sum(v["n"] for v in per_label.values())
    correct = sum(names[label][label] for label in names)
    return {"labels": per_label, "overall": correct / n if n else 0.0,
            "overall_top2": sum(top2.values()) / n if n else 0.0, "n": n, "skipped": skipped}


def main(argv: list[str] | None = None) -> int:
    from modules.config import load_params, shared_dir

    fashion = shared_dir() / "datasets" / "fashion-sample"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--catalog", default=str(fashion / "catalog.csv"), help="CSV with id and baseColour columns")
    ap.add_argument("--images", default=str(fashion / "images"), help="folder of <id>.jpg photos")
    ap.add_argument("--rows", type=int, default=None, help="first N rows only")
    ap.add_argument("--half", choices=HALVES, default="all", help="seeded half of the rows (tune | holdout | all)")
    ap.add_argument("--seed", type=int, default=15, help="seed of the tune/holdout permutation")
    ap.add_argument("--sample", type=int, default=None, help="first N rows of the chosen half (seeded order)")
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args(argv)
    if not Path(args.catalog).is_file():
        print(f"{args.catalog}: no such catalog", file=sys.stderr)
        return 2
    params = load_params().get("encoders", {}).get("color")
    start = time.perf_counter()
    got = name_accuracy(Path(args.catalog), Path(args.images), args.rows, params, args.half, args.seed, args.sample)
    got["seconds"] = round(time.perf_counter() - start, 1)
    print(f"half={args.half} seed={args.seed} sample={args.sample}: {got['n']:,} photos with a colour label "
          f"({got['skipped']:,} skipped): named correctly {got['overall']:.1%} (label in top 2: "
          f"{got['overall_top2']:.1%}), {got['seconds']:.0f} s")
    print("| label | items | named correctly | label in top 2 | names given (count) |")
    print("|---|---|---|---|---|")
    for label, v in sorted(got["labels"].items(), key=lambda kv: -kv[1]["n"]):
        given = ", ".join(f"{k} {c}" for k, c in v["names"].items())
        print(f"| {label} | {v['n']:,} | {v['correct']:.1%} | {v['top2']:.1%} | {given} |")
    if args.json:
        Path(args.json).write_text(json.dumps(got, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
