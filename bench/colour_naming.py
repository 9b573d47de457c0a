"""How often the photo's named dominant colour agrees with a real catalog's colour label.

    python -m bench.colour_naming                 # the whole fashion sample (9,583 photos, ~1-2 min on 2 cores)
    python -m bench.colour_naming --rows 500 --json out.json

Names each photo with ``color_features_and_name`` (what EmbeddingGen and the search engine use, so the same name the
hybrid's colour intent matches), normalises the sample's ``baseColour`` label to the same palette with
``normalize_color_name`` (labels outside the palette, such as "Multi", are skipped), and prints per label: the number
of items, the share named correctly and the names given most often. This is the ceiling on colour-from-photos
search when titles carry no colour (the ``--strip-colour`` check of ``bench/fashion_benchmark.py``).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def name_accuracy(catalog_csv: Path, images_dir: Path, rows: int | None = None,
                  params: dict | None = None) -> dict:
    """{label: {"n", "correct", "names"}} plus "overall", over the rows whose label maps onto the palette."""
    from modules.encoders.color import color_features_and_name, normalize_color_name
    from modules.images import load_image

    with catalog_csv.open(newline="", encoding="utf-8") as f:
        data = [r for i, r in enumerate(csv.DictReader(f)) if rows is None or i < rows]
    names: dict[str, Counter] = defaultdict(Counter)
    skipped = 0
    for r in data:
        label = normalize_color_name(r.get("baseColour", ""))
        photo = images_dir / f"{r['id']}.jpg"
        if label is None or not photo.is_file():
            skipped += 1
            continue
        _, name = color_features_and_name(load_image(photo), params)
        names[label][name] += 1
    per_label = {label: {"n": sum(c.values()), "correct": c[label] / sum(c.values()),
                         "names": dict(c.most_common(4))} for label, c in names.items()}
    n = sum(v["n"] for v in per_label.values())
    correct = sum(names[label][label] for label in names)
    return {"labels": per_label, "overall": correct / n if n else 0.0, "n": n, "skipped": skipped}


def main(argv: list[str] | None = None) -> int:
    from modules.config import load_params, shared_dir

    fashion = shared_dir() / "datasets" / "fashion-sample"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--catalog", default=str(fashion / "catalog.csv"), help="CSV with id and baseColour columns")
    ap.add_argument("--images", default=str(fashion / "images"), help="folder of <id>.jpg photos")
    ap.add_argument("--rows", type=int, default=None, help="first N rows only")
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args(argv)
    if not Path(args.catalog).is_file():
        print(f"{args.catalog}: no such catalog", file=sys.stderr)
        return 2
    params = load_params().get("encoders", {}).get("color")
    got = name_accuracy(Path(args.catalog), Path(args.images), args.rows, params)
    print(f"{got['n']:,} photos with a palette label ({got['skipped']:,} skipped): named correctly "
          f"{got['overall']:.1%}")
    print("| label | items | named correctly | names given (count) |")
    print("|---|---|---|---|")
    for label, v in sorted(got["labels"].items(), key=lambda kv: -kv[1]["n"]):
        given = ", ".join(f"{k} {c}" for k, c in v["names"].items())
        print(f"| {label} | {v['n']:,} | {v['correct']:.0%} | {given} |")
    if args.json:
        Path(args.json).write_text(json.dumps(got, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
