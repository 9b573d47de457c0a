"""Generated look photos for the shop-the-look tests: a small generated catalog plus looks.jsonl (~2 s)."""
from __future__ import annotations

import copy
import io
import json
from pathlib import Path

from PIL import Image


def generated_looks(root: Path, n_items: int = 120, n_looks: int = 16, seed: int = 42) -> tuple[Path, list[dict]]:
    """(DATA_DIR, look records) of a generated catalog with `n_looks` looks."""
    from modules.config import load_params
    from modules.data.catalog.generate import generate_catalog
    from modules.data.catalog.looks import generate_looks

    params = copy.deepcopy(load_params())
    scales = params["generate"]["scales"]
    scales["tiny"] = {**scales["tiny"], "n_items": n_items, "n_users": 40, "n_interactions": 300,
                      "n_text_queries": 10, "n_image_queries": 2, "n_composed_queries": 2}
    data = root / "data"
    generate_catalog("tiny", data, seed=seed, params=params, progress=False)
    return data, generate_looks(data, n_looks=n_looks, seed=seed, params=params)


def look_png(data: Path, record: dict) -> bytes:
    return (data / record["image_path"]).read_bytes()


def blank_png(size: tuple[int, int] = (300, 400), color: tuple[int, int, int] = (236, 236, 232)) -> bytes:
    """A photo with nothing in it: a plain wall with a soft vertical gradient."""
    img = Image.new("RGB", size, color)
    for y in range(size[1]):
        img.paste(tuple(max(0, c - y * 12 // size[1]) for c in color), (0, y, size[0], y + 1))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def read_looks(data: Path) -> list[dict]:
    return [json.loads(line) for line in (data / "looks.jsonl").read_text().splitlines() if line.strip()]
