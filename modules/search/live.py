"""Live updates: ``add_items`` embeds new records with the engine's encoders, appends them to the HNSW indexes and a
delta BM25 index, and gives them the ranker's ``price`` feature from the engine's transform graph
(``transformed.ItemGraph``); ``delete_item`` tombstones (HNSW cannot delete). Re-adding an id replaces the old
version."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from modules.search.state import RECORD_DEFAULTS, EngineState, UnknownItemError, document_text, normalise_items


def _clean_record(rec: Any) -> dict[str, Any]:
    if not isinstance(rec, Mapping):
        raise ValueError("each record must be a mapping")
    iid = str(rec.get("item_id", "")).strip()
    title = str(rec.get("title", "")).strip()
    if not iid or not title:
        raise ValueError("each record needs a non-empty item_id and title")
    price = rec.get("price", 0.0)
    try:
        price = float(price)
    except (TypeError, ValueError):
        raise ValueError(f"item {iid}: price must be a number, got {price!r}") from None
    if not math.isfinite(price) or price < 0:
        raise ValueError(f"item {iid}: price must be a finite number >= 0")
    return {**RECORD_DEFAULTS, **{k: v for k, v in rec.items() if v is not None}, "item_id": iid,
            "title": title, "price": price}


def _embed_images(s: EngineState, images: Sequence[Image.Image | None], n: int
                  ) -> tuple[np.ndarray, list[str], list[np.ndarray], np.ndarray | None]:
    """(image embeddings, dominant colour names, colour-feature rows, fingerprints or None when the engine keeps
    none) of the new items' photos."""
    image_emb = np.zeros((n, s.image_index.dim), np.float32)
    colors = [""] * n
    color_rows = []
    stored = s.photo_fingerprints
    fingerprints = None if stored is None else np.zeros((n, stored.shape[1]), np.uint8)
    for j, img in enumerate(images):
        if img is None:
            if s.color_feats is not None:
                color_rows.append(np.zeros(s.color_feats.shape[1], np.float32))
            continue
        if not isinstance(img, Image.Image):
            raise ValueError(f"images[{j}] must be a PIL.Image or None")
        from modules.encoders.color import color_features_and_name

        img = img.convert("RGB")
        if s.image_encoder is not None:
            image_emb[j] = s.image_encoder.encode_images([img])[0]
        feats, colors[j] = color_features_and_name(img, s.params.get("encoders", {}).get("color"))
        if s.color_feats is not None:
            color_rows.append(feats)
        if fingerprints is not None:
            from modules.encoders.fingerprint import fingerprint_grid, photo_fingerprint

            fingerprints[j] = photo_fingerprint(img, fingerprint_grid(fingerprints))
    return image_emb, colors, color_rows, fingerprints


def add_items(s: EngineState, records: Sequence[Mapping[str, Any]],
              images: Sequence[Image.Image | None] | None = None) -> list[str]:
    """Embed and index new items (searchable on the next call). An existing ``item_id`` is replaced."""
    if not records:
        return []
    images = list(images) if images is not None else [None] * len(records)
    if len(images) != len(records):
        raise ValueError(f"{len(records)} records but {len(images)} images")
    rows = [_clean_record(rec) for rec in records]
    ids = [r["item_id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate item_id in one add_items call")
    new = normalise_items(pd.DataFrame(rows))
    # the ranker's price feature of the new rows from the engine's own transform graph (none: an old engine)
    price_z = None if s.item_graph is None else s.item_graph.price_log_z(new)
    docs = document_text(new)
    text_emb = np.asarray(s.text_encoder.encode(docs), np.float32)
    image_emb, colors, color_rows, fingerprints = _embed_images(s, images, len(new))

    for iid in ids:  # replacement: tombstone the old version
        old = s.id_to_row.get(iid)
        if old is not None:
            s.alive[old] = False
    start = s.n_rows
    new_rows = list(range(start, start + len(new)))
    s.items = pd.concat([s.items, new], ignore_index=True)
    for col in s.items.columns:
        if col not in ("price", "created_at"):
            s.items[col] = s.items[col].fillna("").astype(str)
    s.text_index.add(text_emb)
    s.image_index.add(image_emb)
    s.fused_index.add(s.fusion.fuse_items(text_emb, image_emb))
    if s.color_feats is not None:
        s.color_feats = np.vstack([s.color_feats, np.stack(color_rows).astype(np.float32)])
    s.bm25.add(docs, new_rows)
    s.tfidf.add(docs)
    s.popularity = np.concatenate([s.popularity, np.zeros(len(new), np.float32)])
    if price_z is not None:
        s.price_log_z = np.concatenate([s.price_log_z, price_z.astype(np.float32)])
    if fingerprints is not None:
        s.photo_fingerprints = np.vstack([s.photo_fingerprints, fingerprints])
    s.item_colors.extend(colors)
    s.alive = np.concatenate([s.alive, np.ones(len(new), bool)])
    s.live_added = np.concatenate([s.live_added, np.ones(len(new), bool)])
    s.refresh()
    return ids


def delete_item(s: EngineState, item_id: str) -> None:
    """Tombstone an item: it disappears from every result from the next call on."""
    row = s.id_to_row.pop(str(item_id), None)
    if row is None:
        raise UnknownItemError(f"unknown item_id {item_id!r}")
    s.alive[row] = False
