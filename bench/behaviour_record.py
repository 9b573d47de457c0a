"""Record what the served API answers, and compare two records: the proof that a refactor changed no behaviour.

    python -m bench.behaviour_record record --serving-dir DIR --out before.json [--n 200] [--seed 0]
    python -m bench.behaviour_record compare before.json after.json

``record`` loads the pushed bundle through the server's own app (``serving.app.create_app``, in-process over ASGI)
and sends ``--n`` requests of each kind: text, filtered text, photo, photo+text, similar and recommend. The
requests are drawn with ``--seed`` from the bundle's own catalog (titles, categories, prices, photos and users),
so the same bundle and seed always give the same requests. For each it keeps the status code and, per result, the
id, the score and the explain block; latency fields are dropped. ``compare`` prints how many answers differ per
kind and the first few differences, and exits 1 when any differ. Scores are compared to 1e-6 (relative).
"""
from __future__ import annotations

import argparse
import io
import json
import math
import random
import sys
from pathlib import Path
from typing import Any

from bench._common import latest_bundle_or_exit

KINDS = ("text", "filtered", "photo", "photo_text", "similar", "recommend")
VOLATILE = {"latency_ms", "timings_ms", "stage_ms", "took_ms"}
WORDS = ("red", "blue", "black", "white", "cotton", "leather", "summer", "minimalist", "vintage", "cheap",
         "lamp", "dress", "shoes", "sneakers", "bag", "jacket", "wooden", "gift", "xyzzy", "for kids")


def _photo_bytes(path: Path, rng: random.Random) -> bytes:
    """The item photo, re-encoded as JPEG and resized (a user's photo of the item, not the bundle's own bytes)."""
    from PIL import Image

    img = Image.open(path).convert("RGB")
    scale = rng.choice((0.6, 0.8, 1.0))
    img = img.resize((max(8, int(img.width * scale)), max(8, int(img.height * scale))))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def _text_query(rec: dict, rng: random.Random) -> str:
    words = str(rec.get("title") or "").split()
    picked = rng.sample(words, k=min(len(words), rng.randint(1, 3))) if words else []
    if rng.random() < 0.4:
        picked.append(rng.choice(WORDS))
    return " ".join(picked) or rng.choice(WORDS)


def _filters(rec: dict, rng: random.Random) -> dict:
    out: dict[str, Any] = {}
    if rng.random() < 0.7 and rec.get("category"):
        out["category"] = str(rec["category"])
    price = float(rec.get("price") or 0.0)
    if rng.random() < 0.5 and price > 0:
        out["price_max"] = round(price * rng.choice((1.0, 1.5, 3.0)), 2)
    if rng.random() < 0.3 and price > 0:
        out["price_min"] = round(price * 0.5, 2)
    if rng.random() < 0.3 and rec.get("gender") in ("men", "women", "unisex"):
        out["gender"] = rec["gender"]
    return out or {"category": str(rec.get("category") or "none")}


def _requests(version_dir: Path, n: int, seed: int) -> list[dict]:
    """The request plan: plain dicts, so the plan itself is part of the record."""
    import pandas as pd

    items = pd.read_parquet(version_dir / "search" / "items.parquet").to_dict("records")
    users: list[str] = []
    hist = version_dir / "recommend" / "histories.json"
    if hist.is_file():
        users = sorted(json.loads(hist.read_text()).get("users", {}))
    rng = random.Random(seed)
    plan: list[dict] = []
    for i in range(n):
        rec = rng.choice(items)
        plan.append({"kind": "text", "query": _text_query(rec, rng)})
        rec = rng.choice(items)
        plan.append({"kind": "filtered", "query": _text_query(rec, rng), "filters": _filters(rec, rng)})
        rec = rng.choice(items)
        plan.append({"kind": "photo", "item": rec["item_id"], "image": rec["image_path"],
                     "scale_seed": rng.randrange(1 << 30)})
        rec = rng.choice(items)
        plan.append({"kind": "photo_text", "item": rec["item_id"], "image": rec["image_path"],
                     "text": rng.choice(WORDS), "image_weight": rng.choice((0.3, 0.5, 0.8)),
                     "scale_seed": rng.randrange(1 << 30)})
        plan.append({"kind": "similar", "item": rng.choice(items)["item_id"], "top_k": rng.choice((5, 10, 20))})
        user = rng.choice(users) if users and rng.random() < 0.9 else f"new_user_{i}"
        plan.append({"kind": "recommend", "user": user, "top_k": rng.choice((5, 10, 20))})
    return plan


def _send(client: Any, version_dir: Path, req: dict) -> Any:
    kind = req["kind"]
    if kind in ("text", "filtered"):
        body: dict[str, Any] = {"query": req["query"], "top_k": 10}
        if "filters" in req:
            body["filters"] = req["filters"]
        return client.post("/search/text", json=body)
    if kind in ("photo", "photo_text"):
        data = _photo_bytes(version_dir / req["image"], random.Random(req["scale_seed"]))
        files = {"image": ("q.jpg", data, "image/jpeg")}
        if kind == "photo":
            return client.post("/search/image", files=files, data={"top_k": "10"})
        return client.post("/search/multimodal", files=files,
                           data={"text": req["text"], "image_weight": str(req["image_weight"]), "top_k": "10"})
    if kind == "similar":
        return client.get(f"/similar/{req['item']}", params={"top_k": req["top_k"]})
    return client.get(f"/recommend/{req['user']}", params={"top_k": req["top_k"]})


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def answer_of(status: int, body: Any) -> dict:
    """The comparable part of one response: status and the result list (``results``; /recommend answered
    ``items`` before the redesign of issue 19). /recommend now carries both, ``items`` being the deprecated alias
    of ``results``: the alias is dropped when it is the same list, and kept in ``meta`` (so it shows up as a
    difference) when it is not."""
    if not isinstance(body, dict):
        return {"status": status, "body": body}
    results = body.get("results", body.get("items"))
    skip = {"results", "items", "bundle_version", "user_id"}
    if "results" in body and "items" in body and body["items"] != body["results"]:
        skip.discard("items")                    # a broken alias is a behaviour difference
    rest = {k: v for k, v in body.items() if k not in skip}
    return {"status": status, "results": _strip(results), "meta": _strip(rest)}


def record(serving_dir: str, n: int, seed: int) -> dict:
    from fastapi.testclient import TestClient

    from modules.config import load_params
    from serving.app import create_app

    version, version_dir = latest_bundle_or_exit(serving_dir)
    plan = _requests(version_dir, n, seed)
    answers = []
    with TestClient(create_app(serving_dir, load_params())) as client:
        for req in plan:
            resp = _send(client, version_dir, req)
            answers.append(answer_of(resp.status_code, resp.json()))
    return {"bundle": version, "n": n, "seed": seed, "plan": plan, "answers": answers}


def _close(a: Any, b: Any, tol: float = 1e-6) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
            return False
        return math.isclose(float(a), float(b), rel_tol=tol, abs_tol=tol)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b, strict=True))
    return a == b


def compare(before: dict, after: dict, show: int = 3) -> dict[str, int]:
    """Differences per kind between two records of the same plan."""
    if before["plan"] != after["plan"]:
        raise SystemExit("the two records were made from different request plans (bundle, --n or --seed differ)")
    diffs = {k: 0 for k in KINDS}
    shown = 0
    for req, a, b in zip(before["plan"], before["answers"], after["answers"], strict=True):
        if not _close(a, b):
            diffs[req["kind"]] += 1
            if shown < show:
                shown += 1
                print(f"differs: {json.dumps(req)}\n  before: {json.dumps(a)[:400]}\n  after:  {json.dumps(b)[:400]}")
    return diffs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--serving-dir", required=True)
    rec.add_argument("--out", required=True)
    rec.add_argument("--n", type=int, default=200)
    rec.add_argument("--seed", type=int, default=0)
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("before")
    cmp_.add_argument("after")
    args = ap.parse_args(argv)
    if args.cmd == "record":
        out = record(args.serving_dir, args.n, args.seed)
        Path(args.out).write_text(json.dumps(out))
        codes: dict[str, dict[int, int]] = {}
        for req, ans in zip(out["plan"], out["answers"], strict=True):
            codes.setdefault(req["kind"], {}).setdefault(ans["status"], 0)
            codes[req["kind"]][ans["status"]] += 1
        print(f"recorded {len(out['answers'])} answers from bundle {out['bundle']} -> {args.out}")
        for kind in KINDS:
            print(f"  {kind:<10} status counts {codes.get(kind, {})}")
        return 0
    diffs = compare(json.loads(Path(args.before).read_text()), json.loads(Path(args.after).read_text()))
    for kind in KINDS:
        print(f"  {kind:<10} {diffs[kind]} differ")
    return 1 if any(diffs.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
