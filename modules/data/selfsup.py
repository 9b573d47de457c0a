"""Self-supervised known-item queries for catalogs that come without judged queries.

An ingested catalog has no relevance judgments, yet evaluation, blessing and the learning-to-rank
re-ranker all need queries with known answers. We make two kinds whose answer is known by construction:

- **title-word queries** (``kind="text"``): a few distinctive words of an item's title, sampled with
  probability proportional to their IDF over all titles and kept in title order. The item itself gets
  grade 3; other items with the very same (normalised) title get grade 2, because no text query can tell
  them apart and punishing the engine for that would measure noise.
- **augmented photo queries** (``kind="image"``): the item's own product photo, randomly cropped,
  brightened/darkened and rotated, saved under ``images/queries/``. Only the item gets grade 3.

Queries are split by query (never by item row) into ``train`` and ``eval`` with a seeded permutation per kind,
so the re-ranker trains on train queries only and evaluation reads held-out ones. Every query carries
``source="self_supervised"`` and ``cold=False`` (an ingested catalog has no new SKUs).
"""
from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance
from tqdm import tqdm

from modules.config import param_seed
from modules.data.images import ImageError, load_image
from modules.settings import section_dict

STOPWORDS: frozenset[str] = frozenset(
    "a an and the of for with in on to by from at or as is it its this that".split()
)
_TOKEN_RE = re.compile(r"[0-9a-z]+(?:['-][0-9a-z]+)*")


def tokenize(title: str) -> list[str]:
    """Lower-cased words of a title, without stopwords, one-letter tokens and bare numbers."""
    return [t for t in _TOKEN_RE.findall(title.lower()) if len(t) > 1 and t not in STOPWORDS and not t.isdigit()]


def selfsup_params(params: dict | None) -> dict[str, Any]:
    """The ``ingest.selfsup`` section of ``params`` over params.yaml's (the only source of defaults)."""
    base = section_dict("ingest.selfsup")
    section = ((params or {}).get("ingest") or {}).get("selfsup") or {}
    return {**base, **{k: v for k, v in section.items() if k in base}}


def _as_records(items: Any) -> list[dict[str, Any]]:
    if hasattr(items, "to_dict"):  # a pandas DataFrame
        return [dict(r) for r in items.to_dict(orient="records")]
    return [dict(r) for r in items]


def _title_queries(records: list[dict[str, Any]], n: int, rng: np.random.Generator, cfg: dict[str, Any]) -> list[dict]:
    token_lists = [tokenize(str(r.get("title", ""))) for r in records]
    df = Counter(t for toks in token_lists for t in set(toks))
    n_docs = len(records)
    idf = {t: math.log(1.0 + n_docs / c) for t, c in df.items()}
    by_title: dict[str, list[str]] = {}
    for r, toks in zip(records, token_lists, strict=True):
        by_title.setdefault(" ".join(toks), []).append(str(r["item_id"]))

    candidates = [i for i, toks in enumerate(token_lists) if toks]
    chosen = rng.permutation(candidates)[: min(n, len(candidates))]
    lo, hi = int(cfg["title_words_min"]), int(cfg["title_words_max"])
    out: list[dict] = []
    for idx in sorted(int(i) for i in chosen):
        toks = list(dict.fromkeys(token_lists[idx]))  # unique, title order
        k = min(len(toks), int(rng.integers(lo, hi + 1)))
        weights = np.array([idf[t] for t in toks], dtype=np.float64)
        picked = set(rng.choice(len(toks), size=k, replace=False, p=weights / weights.sum()).tolist())
        text = " ".join(t for j, t in enumerate(toks) if j in picked)
        item_id = str(records[idx]["item_id"])
        relevance = {other: 2 for other in by_title[" ".join(token_lists[idx])] if other != item_id}
        relevance[item_id] = 3
        out.append({"kind": "text", "text": text, "image_path": "", "relevance": relevance})
    return out


def augment_photo(img: Image.Image, rng: np.random.Generator, cfg: dict[str, Any]) -> Image.Image:
    """Random crop, brightness change and rotation of a product photo (the background colour fills the corners)."""
    w, h = img.size
    frac = float(rng.uniform(cfg["crop_min"], cfg["crop_max"]))
    cw, ch = max(1, round(w * frac)), max(1, round(h * frac))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    out = img.crop((x0, y0, x0 + cw, y0 + ch))
    out = ImageEnhance.Brightness(out).enhance(float(rng.uniform(cfg["brightness_min"], cfg["brightness_max"])))
    angle = float(rng.uniform(-cfg["rotation_deg"], cfg["rotation_deg"]))
    fill = out.getpixel((0, 0))
    return out.rotate(angle, resample=Image.BILINEAR, expand=False, fillcolor=fill)


def _image_queries(records: list[dict[str, Any]], data_dir: Path, n: int, rng: np.random.Generator,
                   cfg: dict[str, Any], progress: bool) -> list[dict]:
    with_photo = [i for i, r in enumerate(records) if r.get("image_path")]
    chosen = sorted(int(i) for i in rng.permutation(with_photo)[: min(n, len(with_photo))])
    qdir = data_dir / "images" / "queries"
    qdir.mkdir(parents=True, exist_ok=True)
    out: list[dict] = []
    for j, idx in enumerate(tqdm(chosen, desc="selfsup: augmented photo queries", unit="img", disable=not progress)):
        r = records[idx]
        try:
            img = load_image(data_dir / str(r["image_path"]))
        except ImageError:
            continue  # the ingest already checked every photo; a vanished file just yields one query fewer
        query_img = augment_photo(img, rng, cfg)
        rel = f"images/queries/ss_img_{j:05d}.jpg"
        query_img.save(data_dir / rel, format="JPEG", quality=int(cfg["jpeg_quality"]))
        img.close()
        query_img.close()
        out.append({"kind": "image", "text": "", "image_path": rel, "relevance": {str(r["item_id"]): 3}})
    return out


def _split(queries: list[dict], eval_fraction: float, rng: np.random.Generator) -> None:
    """Assign train/eval per query with a seeded permutation (both splits non-empty when there are >= 2)."""
    n = len(queries)
    n_eval = int(round(n * eval_fraction))
    if n >= 2:
        n_eval = min(max(n_eval, 1), n - 1)
    eval_idx = set(rng.permutation(n)[:n_eval].tolist())
    for i, q in enumerate(queries):
        q["split"] = "eval" if i in eval_idx else "train"


def make_selfsupervised_queries(
    items: Any,
    data_dir: str | Path,
    seed: int | None = None,
    n_text: int | None = None,
    n_image: int | None = None,
    params: dict | None = None,
    progress: bool = False,
) -> list[dict]:
    """Known-item queries for ``items`` (records or a DataFrame with item_id, title, image_path).

    ``image_path`` is relative to ``data_dir``; augmented query photos are written to
    ``data_dir/images/queries/``. ``n_text`` / ``n_image`` default to ``ingest.selfsup`` in params.yaml
    and are capped by the number of usable items. The result is deterministic for a given seed.
    """
    seed = param_seed(params) if seed is None else seed
    cfg = selfsup_params(params)
    records = _as_records(items)
    data_dir = Path(data_dir)
    n_text = int(cfg["n_text_queries"] if n_text is None else n_text)
    n_image = int(cfg["n_image_queries"] if n_image is None else n_image)
    text_q = _title_queries(records, n_text, np.random.default_rng([seed, 1]), cfg)
    image_q = _image_queries(records, data_dir, n_image, np.random.default_rng([seed, 2]), cfg, progress)
    split_rng = np.random.default_rng([seed, 3])
    _split(text_q, float(cfg["eval_fraction"]), split_rng)
    _split(image_q, float(cfg["eval_fraction"]), split_rng)
    queries: list[dict] = []
    for prefix, group in (("ss_t", text_q), ("ss_i", image_q)):
        for i, q in enumerate(group):
            queries.append({"qid": f"{prefix}_{i:05d}", **q, "cold": False, "source": "self_supervised"})
    return queries
