"""Shop-the-look benchmark on generated looks, against a real pushed bundle loaded with the server's loader.

    python bench/look_benchmark.py [--work DIR] [--n-items 300] [--n-looks 60] [--modes salient,auto]

Builds (once, cached in --work) a real bundle from a generated catalog the way tests/serving_fixtures.py does
(MiniLM text, frozen EfficientNet-Lite3 + LiT, LambdaMART re-ranker), generates look photos into its DATA_DIR
(modules/data/catalog/looks.py), loads the pushed bundle with serving.bundle_loading.load_components and prints:

- region recall: share of the looks' true items covered by a proposed region at IoU >= 0.5;
- region hit@10: share of those matched regions whose top 10 (engine.search_image on the region's crop) holds
  the true item; end-to-end hit@10 = recall x region hit@10 (the item is both found and retrieved);
- two references: the true boxes searched the same way (what perfect proposals would give) and the whole photo
  searched once (no regions);
- per-photo proposal time and per-region search time.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for p in (REPO, REPO / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


def build(work: Path, n_items: int, seed: int) -> Path:
    """SERVING_DIR of a real bundle built from a generated catalog in work/data (reused when present)."""
    if not (work / "serving_dir" / "LATEST").is_file():
        from serving_fixtures import build_real_bundle

        t0 = time.perf_counter()
        build_real_bundle(work, version="look1", n_items=n_items, seed=seed)
        print(f"built the bundle ({n_items} items) in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return work / "serving_dir"


def hit(engine, img, box, item_id: str, margin: float, k: int = 10) -> bool:
    from modules.look.proposals import crop_region

    crop = crop_region(img, tuple(box), margin) if box is not None else img
    return item_id in [str(r.item_id) for r in engine.search_image(crop, top_k=k).results]


def evaluate(engine, data: Path, looks: list[dict], mode: str, params: dict) -> dict:
    from PIL import Image

    from modules.config import param_seed
    from modules.look import LookProposer, iou, look_config

    cfg = look_config({"look": {**params.get("look", {}), "mode": mode}})
    proposer = LookProposer(cfg, seed=param_seed(params))
    if proposer.models is not None:
        proposer.models.warm_up()
    n = matched = region_hits = 0
    by_role: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    t_prop, t_search, n_search, n_regions = 0.0, 0.0, 0, 0
    for look in looks:
        img = Image.open(data / look["image_path"]).convert("RGB")
        t0 = time.perf_counter()
        regions = proposer.propose(img)
        t_prop += time.perf_counter() - t0
        n_regions += len(regions)
        for obj in look["objects"]:
            n += 1
            role = by_role[obj["role"]]
            role[0] += 1
            best = max(regions, key=lambda r: iou(r.box, obj["box"]), default=None)
            if best is None or iou(best.box, obj["box"]) < 0.5:
                continue
            matched += 1
            role[1] += 1
            t0 = time.perf_counter()
            ok = hit(engine, img, best.box, obj["item_id"], float(cfg["crop_margin"]))
            t_search += time.perf_counter() - t0
            n_search += 1
            region_hits += ok
            role[2] += ok
    return {"mode": mode, "proposer": "models+salient" if proposer.models is not None else "salient",
            "objects": n, "recall": matched / n, "region_hit10": region_hits / max(matched, 1),
            "end_to_end_hit10": region_hits / n, "regions_per_photo": n_regions / len(looks),
            "proposal_ms": 1000 * t_prop / len(looks), "search_ms_per_region": 1000 * t_search / max(n_search, 1),
            "by_role": {k: {"objects": v[0], "recall": v[1] / v[0], "region_hit10": v[2] / max(v[1], 1)}
                        for k, v in sorted(by_role.items())}}


def references(engine, data: Path, looks: list[dict], margin: float) -> dict:
    from PIL import Image

    n = oracle = whole = 0
    for look in looks:
        img = Image.open(data / look["image_path"]).convert("RGB")
        top = [str(r.item_id) for r in engine.search_image(img, top_k=10).results]
        for obj in look["objects"]:
            n += 1
            oracle += hit(engine, img, obj["box"], obj["item_id"], margin)
            whole += obj["item_id"] in top
    return {"true_box_hit10": oracle / n, "whole_photo_hit10": whole / n}


def machine() -> str:
    try:
        names = [ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")]
    except OSError:
        names = []
    import os

    return f"{names[0] if names else platform.machine()}, {os.cpu_count()} logical CPUs visible"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/pixelmatch-look-bench"))
    ap.add_argument("--n-items", type=int, default=300)
    ap.add_argument("--n-looks", type=int, default=60)
    ap.add_argument("--modes", default="salient,auto")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)

    from modules.bundle import read_latest
    from modules.config import load_params
    from modules.data.catalog.looks import generate_looks
    from serving.bundle_loading import load_components

    params = load_params()
    serving_dir = build(args.work, args.n_items, args.seed)
    looks = generate_looks(args.work / "data", n_looks=args.n_looks, seed=args.seed, params=params)
    engine, _ = load_components(serving_dir / read_latest(serving_dir), params)
    out = {"date": time.strftime("%Y-%m-%d", time.gmtime()), "machine": machine(),
           "n_items": args.n_items, "n_looks": len(looks),
           "scenes": {s: sum(lk["scene"] == s for lk in looks) for s in ("outfit", "room")},
           "modes": [evaluate(engine, args.work / "data", looks, m, params) for m in args.modes.split(",")],
           **references(engine, args.work / "data", looks, float(params["look"]["crop_margin"]))}
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
