"""Generated "shop the look" photos: 2-4 catalog items composed on one background, with their true boxes.

An outfit is a person-like silhouette (skin-toned head, neck, arms and legs) wearing a top and a bottom (or a
dress) and shoes, plus, at ``accessory_rate``, a bag or a watch beside it; a room is a wall and a floor with a lamp
and one to three things on the floor. Each item is its own catalog photo cut out from its studio background
(the border colour) and fitted into a slot. `generate_looks(data_dir)` writes ``looks/<look_id>.png`` and
``looks.jsonl`` (one record per look: look_id, kind "look", scene, image_path, width, height, objects
[{item_id, category, role, box}], split). Looks stay out of queries.jsonl: its loader accepts only the kinds
text, image and composed, and the re-ranker trains on every kind it finds there.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw
from scipy import ndimage

ROLES = {"top": ("shirts", "t-shirts", "jackets"), "bottom": ("jeans",), "dress": ("dresses",),
         "shoes": ("sneakers", "boots", "sandals"), "accessory": ("handbags", "backpacks", "watches"),
         "lamp": ("lamps",), "floor": ("handbags", "backpacks", "boots", "sneakers", "watches")}
SKIN = [(241, 194, 160), (224, 172, 130), (198, 134, 94), (141, 85, 56), (96, 60, 40)]
CUT_THRESHOLD = 45.0     # RGB distance from the photo's border colour that counts as the product


def cutout(photo: Image.Image) -> Image.Image:
    """RGBA crop of the product: pixels far from the border colour (largest blob, holes filled)."""
    arr = np.asarray(photo.convert("RGB"), dtype=np.float32)
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    mask = np.linalg.norm(arr - np.median(border, axis=0), axis=2) > CUT_THRESHOLD
    labels, n = ndimage.label(mask)
    if n:
        sizes = ndimage.sum(mask, labels, range(1, n + 1))
        mask = ndimage.binary_fill_holes(labels == (1 + int(np.argmax(sizes))))
    if mask.mean() < 0.05:          # a white item on a white studio: keep the whole photo
        mask = np.ones_like(mask)
    ys, xs = np.nonzero(mask)
    rgba = np.dstack([arr.astype(np.uint8), (mask * 255).astype(np.uint8)])
    return Image.fromarray(rgba[ys.min():ys.max() + 1, xs.min():xs.max() + 1], "RGBA")


def paste_fit(canvas: Image.Image, cut: Image.Image, slot: tuple[float, float, float, float],
              anchor_bottom: bool = False) -> list[int]:
    """Scale `cut` to fit `slot` (aspect kept), centre it (or stand it on the slot's bottom), paste; its box."""
    x0, y0, x1, y1 = slot
    s = min((x1 - x0) / cut.width, (y1 - y0) / cut.height)
    w, h = max(1, int(cut.width * s)), max(1, int(cut.height * s))
    px = int(x0 + ((x1 - x0) - w) / 2)
    py = int(y1 - h) if anchor_bottom else int(y0 + ((y1 - y0) - h) / 2)
    canvas.paste(cut.resize((w, h), Image.BILINEAR), (px, py), cut.resize((w, h), Image.BILINEAR))
    return [px, py, px + w, py + h]


def _background(w: int, h: int, rng: np.random.Generator, floor_at: float | None = None) -> Image.Image:
    base = rng.uniform(222, 248) + rng.uniform(-8, 8, size=3)
    arr = np.ones((h, w, 3), np.float32) * base
    arr += np.linspace(0, rng.uniform(-14, 6), h, dtype=np.float32)[:, None, None]
    if floor_at is not None:
        arr[int(floor_at * h):] -= rng.uniform(8, 18)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _jitter(slot: tuple[float, ...], w: int, h: int, rng: np.random.Generator, amount: float = 0.03) -> tuple:
    d = rng.uniform(-amount, amount, size=4)
    return tuple(float((v + dv) * (w if i % 2 == 0 else h)) for i, (v, dv) in enumerate(zip(slot, d, strict=True)))


def _person(canvas: Image.Image, cx: float, rng: np.random.Generator) -> None:
    """Skin-toned head, neck, arms and legs that the garments cover."""
    w, h = canvas.size
    skin = SKIN[int(rng.integers(len(SKIN)))]
    d = ImageDraw.Draw(canvas)
    d.ellipse([cx * w - 0.07 * w, 0.03 * h, cx * w + 0.07 * w, 0.14 * h], fill=skin)
    d.rectangle([cx * w - 0.025 * w, 0.13 * h, cx * w + 0.025 * w, 0.18 * h], fill=skin)
    for side in (-1, 1):
        d.line([(cx + side * 0.15) * w, 0.2 * h, (cx + side * 0.22) * w, 0.5 * h], fill=skin, width=int(0.04 * w))
        d.line([(cx + side * 0.07) * w, 0.5 * h, (cx + side * 0.08) * w, 0.86 * h], fill=skin, width=int(0.05 * w))


def _pick(items: pd.DataFrame, role: str, rng: np.random.Generator) -> pd.Series | None:
    pool = items[items["category"].isin(ROLES[role])]
    return None if pool.empty else pool.iloc[int(rng.integers(len(pool)))]


def _place(canvas: Image.Image, data_dir: Path, row: pd.Series, role: str, slot: tuple, bottom: bool = False) -> dict:
    cut = cutout(Image.open(data_dir / str(row["image_path"])))
    box = paste_fit(canvas, cut, slot, anchor_bottom=bottom)
    return {"item_id": str(row["item_id"]), "category": str(row["category"]), "role": role, "box": box}


def outfit_look(items: pd.DataFrame, data_dir: Path, cfg: Mapping[str, Any], rng: np.random.Generator
                ) -> tuple[Image.Image, list[dict]]:
    w, h = int(cfg["width"]), int(cfg["height"])
    canvas = _background(w, h, rng)
    cx = float(rng.uniform(0.34, 0.42))
    _person(canvas, cx, rng)
    plan = [("dress", (cx - 0.2, 0.16, cx + 0.2, 0.76))] if rng.random() < 0.3 else \
        [("bottom", (cx - 0.16, 0.46, cx + 0.16, 0.86)), ("top", (cx - 0.24, 0.16, cx + 0.24, 0.47))]
    plan.append(("shoes", (cx - 0.2, 0.86, cx + 0.2, 0.99)))
    if rng.random() < float(cfg["accessory_rate"]):
        plan.append(("accessory", (0.66, 0.42, 0.97, 0.68)))
    objects = []
    for role, slot in plan:
        row = _pick(items, role, rng)
        if row is not None:
            objects.append(_place(canvas, data_dir, row, role, _jitter(slot, w, h, rng, 0.015)))
    return canvas, objects


def room_look(items: pd.DataFrame, data_dir: Path, cfg: Mapping[str, Any], rng: np.random.Generator
              ) -> tuple[Image.Image, list[dict]]:
    w, h = int(cfg["width"]), int(cfg["height"])
    canvas = _background(w, h, rng, floor_at=0.7)
    objects = []
    lamp = _pick(items, "lamp", rng)
    if lamp is not None:
        objects.append(_place(canvas, data_dir, lamp, "lamp", _jitter((0.04, 0.2, 0.5, 0.8), w, h, rng), True))
    slots = [(0.55, 0.2, 0.95, 0.45), (0.55, 0.5, 0.95, 0.8), (0.1, 0.82, 0.5, 0.98)]
    for slot in slots[: int(rng.integers(1, 4))]:
        row = _pick(items, "floor", rng)
        if row is not None:
            objects.append(_place(canvas, data_dir, row, "object", _jitter(slot, w, h, rng, 0.02), True))
    return canvas, objects


def generate_looks(data_dir: str | Path, n_looks: int | None = None, seed: int | None = None,
                   params: Mapping[str, Any] | None = None) -> list[dict]:
    """Write ``looks/*.png`` and ``looks.jsonl`` into a generated catalog's DATA_DIR; returns the records."""
    from modules.config import load_params, param_seed

    seed = param_seed(params) if seed is None else seed
    cfg = {**load_params()["look"]["generate"], **((params or {}).get("look", {}).get("generate", {}))}
    data_dir = Path(data_dir)
    items = pd.read_csv(data_dir / "items.csv", usecols=["item_id", "category", "image_path"]).dropna()
    n = int(cfg["n_looks"] if n_looks is None else n_looks)
    rng = np.random.default_rng([seed, 21])
    (data_dir / "looks").mkdir(exist_ok=True)
    records = []
    for i in range(n):
        room = rng.random() < float(cfg["room_fraction"])
        img, objects = (room_look if room else outfit_look)(items, data_dir, cfg, rng)
        rel = f"looks/look_{i:05d}.png"
        img.save(data_dir / rel)
        records.append({"look_id": f"look_{i:05d}", "kind": "look", "scene": "room" if room else "outfit",
                        "image_path": rel, "width": img.width, "height": img.height, "objects": objects,
                        "split": "train" if rng.random() < 0.5 else "eval"})
    with (data_dir / "looks.jsonl").open("w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return records
