"""EmbeddingGen logic: SBERT text embeddings, the LiT image tower (trained here) and colour features."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from components.common import load_items
from modules.data_io import (
    EMB_COLOR_FILE,
    EMB_COLOR_NAMES_FILE,
    EMB_IDS_FILE,
    EMB_IMAGE_FILE,
    EMB_TEXT_FILE,
    EMB_TOWER_DIR,
)

log = logging.getLogger(__name__)


def _image_paths(items: Any, data_dir: Path) -> list[Path | None]:
    """Each item's photo path (None where the catalog has none)."""
    return [data_dir / rel if rel else None for rel in items["image_path"].fillna("").astype(str)]


def generate(data_dir: str, out_dir: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """Write text.npy, image.npy, color.npy, item_ids.json and image_tower/ to ``out_dir``; return stats."""
    from modules.data_io import item_text
    from modules.encoders.color import color_feature_dim, color_features_for_paths
    from modules.encoders.text import text_encoder_from_params
    from modules.encoders.tower import ImageTower
    from modules.tracking import child_run, emissions

    root, out = Path(data_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items = load_items(root)
    texts = item_text(items)
    enc_params = params.get("encoders", {})
    t0 = time.time()
    encoder = text_encoder_from_params(params)
    text_emb = encoder.encode(texts, batch_size=int(enc_params.get("text", {}).get("batch_size", 64)), progress=True)
    t_text = time.time() - t0

    # Images are streamed from disk (decoded per batch, never all in memory): a colour pass over every photo
    # (spread over `encoders.color.workers` processes) that also finds the unreadable ones, then the tower.
    paths = _image_paths(items, root)
    with_path = np.array([p is not None for p in paths])
    max_pixels = int(params.get("serving", {}).get("max_image_pixels", 40_000_000))
    color = np.zeros((len(items), color_feature_dim(params)), dtype=np.float32)
    color_names = [""] * len(items)
    idx = np.flatnonzero(with_path)
    feats, names, ok = color_features_for_paths(
        [paths[i] for i in idx], params, seed=seed, workers=int(enc_params.get("color", {}).get("workers", 1)),
        max_pixels=max_pixels,
    )
    color[idx] = feats
    for j, i in enumerate(idx):
        color_names[i] = names[j] if ok[j] else ""
    has_image = np.zeros(len(items), dtype=bool)
    has_image[idx[ok]] = True
    for i in np.flatnonzero(with_path & ~has_image):
        log.warning("item %s: image %s unusable; the item is text-only", items["item_id"].iloc[i], paths[i])
    rows = np.flatnonzero(has_image)
    if len(rows) < 2:
        raise ValueError(f"{data_dir}: {len(rows)} readable item photo(s); the image tower needs at least 2")
    t1 = time.time()
    with child_run("training:image_tower", params={f"tower.{k}": v for k, v in enc_params.get("tower", {}).items()}) as run:
        with emissions("image_tower", out / "codecarbon") as em:
            tower = ImageTower.train([paths[i] for i in rows], text_emb[rows], params, seed=seed, progress=True,
                                     color_feats=color[rows], images_checked=True)
        import mlflow

        mlflow.log_metrics({"n_items": len(items), "n_with_image": int(has_image.sum()), "train_seconds": time.time() - t1})
        run_id = run.info.run_id
    image_emb = np.zeros((len(items), tower.dim), dtype=np.float32)
    image_emb[rows] = tower.encode_paths([paths[i] for i in rows], batch_size=256, progress=True, on_error="zero",
                                         color_feats=color[rows])

    np.save(out / EMB_TEXT_FILE, text_emb.astype(np.float32))
    np.save(out / EMB_IMAGE_FILE, image_emb.astype(np.float32))
    np.save(out / EMB_COLOR_FILE, color.astype(np.float32))
    (out / EMB_IDS_FILE).write_text(json.dumps(items["item_id"].astype(str).tolist()))
    (out / EMB_COLOR_NAMES_FILE).write_text(json.dumps(color_names))
    tower.save(out / EMB_TOWER_DIR)
    return {
        "n_items": len(items),
        "n_with_image": int(has_image.sum()),
        "text_dim": int(text_emb.shape[1]),
        "image_dim": int(image_emb.shape[1]),
        "text_seconds": round(t_text, 2),
        "tower_seconds": round(time.time() - t1, 2),
        "emissions_kg": em.get("emissions_kg", 0.0),
        "mlflow_run_id": run_id,
    }
