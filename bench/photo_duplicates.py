"""How far a product's own re-encoded photo is from its catalog fingerprint, and from every other product's: the
measurement behind ``retrieval.photo.duplicate_distance`` (the "same photo" promotion of photo queries).

    .venv/bin/python bench/photo_duplicates.py                               # 1,000 random products, seed 42
    .venv/bin/python bench/photo_duplicates.py --grid 8 --grid 12            # compare fingerprint grids
    .venv/bin/python bench/photo_duplicates.py --synthetic /tmp/demo5/data   # + the synthetic catalog's street photos

Fashion sample (read in place): each catalog fingerprint is taken from the photo as ``pixelmatch ingest`` stores it
(decoded, longest side capped at ``ingest.max_image_side``, JPEG ``ingest.jpeg_quality``, decoded again). The
query is the product's own photo as a shopper sends it (JPEG quality 85 at 80% size, as
``bench/fashion_benchmark.py`` sends it). "own" is the query's distance to its own fingerprint; "other" its
distance to the nearest product whose photo FILE differs (md5): byte-identical photos of two products are the
same photo and no fingerprint can tell them apart.

``--synthetic DATA_DIR``: every EVAL image (and composed) query photo of a generated catalog against EVERY catalog
fingerprint (a superset of any query's candidates): how many have a product under the threshold (a street photo
is never a catalog photo, so this should be ~0).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from modules.config import load_params, shared_dir  # noqa: E402
from modules.data.images import load_image  # noqa: E402
from modules.encoders.fingerprint import fingerprint_distance, photo_fingerprint  # noqa: E402

FASHION = shared_dir() / "datasets" / "fashion-sample"
PCTS = (0.1, 1, 5, 50, 90, 99, 99.9)


def _jpeg(img, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def ingested(path: Path, max_side: int, quality: int):
    """The photo as ``pixelmatch ingest`` stores it (``modules.data.ingest_images``), decoded as the photo pass
    decodes it."""
    img = load_image(path)
    if max(img.size) > max_side:
        img.thumbnail((max_side, max_side))
    return load_image(_jpeg(img, quality))


def shopper_copy(path: Path, scale: float = 0.8, quality: int = 85):
    """The photo re-encoded as JPEG ``quality`` at ``scale`` size (``fashion_benchmark._photo_bytes``), decoded as
    the server decodes an upload."""
    from PIL import Image

    img = Image.open(path).convert("RGB")
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BILINEAR)
    return load_image(_jpeg(img, quality))


def _stats(values: np.ndarray) -> dict[str, float]:
    return {"min": float(values.min()), "max": float(values.max()),
            **{f"p{p:g}": float(np.percentile(values, p)) for p in PCTS}}


def fashion(grids: list[int], n: int, seed: int, params: dict, threshold: float) -> dict:
    ids = sorted(r["id"] for r in csv.DictReader((FASHION / "catalog.csv").open())
                 if (FASHION / "images" / f"{r['id']}.jpg").is_file())
    paths = [FASHION / "images" / f"{i}.jpg" for i in ids]
    md5 = np.array([hashlib.md5(p.read_bytes()).hexdigest() for p in paths])
    ing = params["ingest"]
    t0 = time.perf_counter()
    catalog_imgs = [ingested(p, int(ing["max_image_side"]), int(ing["jpeg_quality"])) for p in paths]
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(ids), size=min(n, len(ids)), replace=False)
    query_imgs = [shopper_copy(paths[j]) for j in picks]
    decode_s = time.perf_counter() - t0
    out = {"photos": len(ids), "identical_groups": int(sum(c > 1 for c in np.unique(md5, return_counts=True)[1])),
           "queries": len(picks), "seed": seed, "decode_s": decode_s, "grids": {}}
    for grid in grids:
        cat = np.stack([photo_fingerprint(im, grid) for im in catalog_imgs])
        own, other, nearest = [], [], []
        for j, im in zip(picks, query_imgs, strict=True):
            d = fingerprint_distance(photo_fingerprint(im, grid), cat)
            own.append(d[j])
            d[md5 == md5[j]] = np.inf
            k = int(np.argmin(d))
            other.append(d[k])
            nearest.append((float(d[k]), ids[j], ids[k]))
        own_a, other_a = np.array(own), np.array(other)
        out["grids"][grid] = {"own": _stats(own_a), "other": _stats(other_a),
                              "margin": float(other_a.min() - own_a.max()),
                              "own_missed": int((own_a >= threshold).sum()),      # own photo not promoted
                              "others_promoted": int((other_a < threshold).sum()),  # another product promoted
                              "other_closer_than_own": int((other_a <= own_a).sum()),  # would come first
                              "closest_others": sorted(nearest)[:5]}
    return out


def synthetic(data_dir: Path, grid: int, threshold: float) -> dict:
    from modules.data.data_io import load_items, load_queries

    items = load_items(data_dir)
    rels = items["image_path"].fillna("").astype(str)
    cat = np.stack([photo_fingerprint(load_image(data_dir / r), grid) if r else np.zeros(3 * grid * grid, np.uint8)
                    for r in rels])
    out = {"items": len(items), "threshold": threshold}
    for kind in ("image", "composed"):
        qs = [q for q in load_queries(data_dir) if q.get("kind") == kind and q.get("split") == "eval"
              and q.get("image_path")]
        best = np.array([fingerprint_distance(photo_fingerprint(load_image(data_dir / q["image_path"]), grid),
                                              cat).min() for q in qs])
        out[kind] = {"eval_queries": len(qs), "with_a_product_under_threshold": int((best < threshold).sum()),
                     "nearest_product": _stats(best) if len(best) else None}
    return out


def main(argv: list[str] | None = None) -> int:
    params = load_params()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="random products whose own photo is the query")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--grid", type=int, action="append", help="fingerprint cells per side (repeatable; default: params)")
    ap.add_argument("--threshold", type=float, default=None, help="default: retrieval.photo.duplicate_distance")
    ap.add_argument("--synthetic", type=Path, default=None, help="a generated DATA_DIR with image queries")
    args = ap.parse_args(argv)
    grids = args.grid or [int(params["encoders"]["fingerprint"]["grid"])]
    threshold = float(params["retrieval"]["photo"]["duplicate_distance"] if args.threshold is None else args.threshold)
    result = {"threshold": threshold, "fashion": fashion(grids, args.n, args.seed, params, threshold)}
    if args.synthetic:
        result["synthetic"] = synthetic(args.synthetic, grids[0], threshold)
    result["measured_at"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
