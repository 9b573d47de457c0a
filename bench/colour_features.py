"""Time the model-free colour features (EmbeddingGen's colour pass and the tower's photo augmentation).

    python -m bench.colour_features --data /tmp/pm_full --n 300

Per image, single process: ``color_features_and_name`` on catalog photos, ``photo_augment`` of a 96 px render
(what the image tower trains on) and ``color_features_and_name`` of that augmented photo. Prints the median of
``--repeats`` timed passes (ms per image) and a checksum of the features, so two code versions can be
compared for speed and for identical output.
"""
from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _median_ms(fn, items: list, repeats: int) -> float:  # noqa: ANN001  (a one-argument callable)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for item in items:
            fn(item)
        runs.append((time.perf_counter() - start) / len(items) * 1000.0)
    return statistics.median(runs)


def main(argv: list[str] | None = None) -> int:
    from modules.data.images import image_to_array
    from modules.encoders.color import color_features_and_name
    from modules.encoders.tower_augment import photo_augment

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a DATA_DIR with images/ (pixelmatch generate or ingest)")
    ap.add_argument("--n", type=int, default=300, help="photos timed")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)
    paths = sorted((Path(args.data) / "images").glob("*.*"))[: args.n]
    if not paths:
        print(f"no photos under {args.data}/images", file=sys.stderr)
        return 2
    photos = [Image.open(p).convert("RGB") for p in paths]
    renders = [np.ascontiguousarray(image_to_array(im, 96)) for im in photos]
    rng = np.random.default_rng(args.seed)
    street = [Image.fromarray((photo_augment(a, rng) * 255).astype(np.uint8), "RGB") for a in renders]
    digest = hashlib.sha256()
    for im in photos + street:
        feats, name = color_features_and_name(im)
        digest.update(feats.tobytes() + name.encode())
    aug_rng = np.random.default_rng(args.seed)
    print(f"photos: {len(photos)} from {args.data}, median of {args.repeats} passes, one process")
    print(f"color_features_and_name (catalog photo): {_median_ms(color_features_and_name, photos, args.repeats):.1f} ms/img")
    print(f"photo_augment (96 px render):           "
          f"{_median_ms(lambda a: photo_augment(a, aug_rng), renders, args.repeats):.1f} ms/img")
    print(f"color_features_and_name (augmented photo):  {_median_ms(color_features_and_name, street, args.repeats):.1f} ms/img")
    print(f"features sha256: {digest.hexdigest()[:16]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
