"""Time EmbeddingGen's photo pass per photo: decode, colour features + name, frozen backbone features.

    python -m bench.photo_pass --data /tmp/p18tiny --n 200
    python -m bench.photo_pass --data /work/shared/datasets/fashion-sample --n 200 --workers 2

``--data``: a DATA_DIR (items.csv with image_path) or a folder with an ``images/`` subfolder (read in place).
Single process, one photo at a time: the mean ms/photo of each stage (the first photo, which builds the
interpreter, is left out) and the share of distinct pixel rows the colour distances now run over (the per-value
cache), then, with ``--workers``, the wall time of the whole pass
(:func:`modules.encoders.photo_pass.photo_pass`) over that many processes, start-up included, and what that
rate means for 100,000 photos. Timings on a shared machine are noisy: run it twice.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def photo_paths(data: Path, n: int) -> list[Path]:
    """The first ``n`` photos of the catalog (items.csv order) or of ``data/images`` (name order)."""
    if (data / "items.csv").is_file():
        import pandas as pd

        rels = pd.read_csv(data / "items.csv", usecols=["image_path"])["image_path"].dropna().astype(str)
        return [data / r for r in rels if r][:n]
    return sorted(p for p in (data / "images").iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:n]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--workers", type=int, default=0, help="also time the whole pass over this many processes")
    args = ap.parse_args(argv)
    from modules.config import load_params
    from modules.data.images import load_image
    from modules.encoders import color_space
    from modules.encoders.backbone import Backbone
    from modules.encoders.color import color_features_and_name
    from modules.encoders.photo_pass import photo_pass

    params = load_params()
    name = str(params["encoders"]["backbone"]["model"])
    paths = photo_paths(args.data, args.n)
    backbone = Backbone(name)
    stages: dict[str, list[float]] = {"decode": [], "colour": [], "backbone": []}
    rows = [0, 0]  # pixel rows the colour distances ran over: all of them, and the distinct ones (the cache)
    cached = color_space.per_distinct_row

    def counting(fn, pixels):  # noqa: ANN001, ANN202
        rows[0] += len(pixels)
        rows[1] += len(np.unique(pixels, axis=0))
        return cached(fn, pixels)

    for path in paths:
        t0 = time.perf_counter()
        img = load_image(path)
        t1 = time.perf_counter()
        color_features_and_name(img, params, 42)
        t2 = time.perf_counter()
        backbone.features([img])
        t3 = time.perf_counter()
        color_space.per_distinct_row = counting  # counted outside the timed calls
        color_features_and_name(img, params, 42)
        color_space.per_distinct_row = cached
        for key, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            stages[key].append(dt * 1000)
    ms = {k: round(float(np.mean(v[1:] or v)), 2) for k, v in stages.items()}
    out = {"data": str(args.data), "n": len(paths), "ms_per_photo_single_process": ms,
           "total_ms_per_photo": round(sum(ms.values()), 2),
           "colour_distinct_pixel_rows": f"{rows[1]:,} of {rows[0]:,} ({rows[1] / max(rows[0], 1):.1%})"}
    out["min_100k_single_process"] = round(out["total_ms_per_photo"] * 100_000 / 60_000, 1)
    if args.workers:
        t0 = time.perf_counter()
        done = photo_pass(paths, params, 42, backbone=name, workers=args.workers, progress=False)
        wall = time.perf_counter() - t0
        out[f"pass_wall_s_{args.workers}_workers"] = round(wall, 2)
        out["pass_ms_per_photo_wall"] = round(wall * 1000 / len(paths), 2)
        out["min_100k_at_that_rate"] = round(wall / len(paths) * 100_000 / 60, 1)
        out["readable"] = int(done.readable.sum())
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
