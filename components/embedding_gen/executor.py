"""EmbeddingGen logic: SBERT text embeddings, the LiT image tower (trained here) and colour features."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from components.common import load_items

log = logging.getLogger(__name__)
TEXT_FILE, IMAGE_FILE, COLOR_FILE, IDS_FILE, TOWER_DIR = "text.npy", "image.npy", "color.npy", "item_ids.json", "image_tower"
COLOR_NAMES_FILE = "item_colors.json"


def _load_images(items: Any, data_dir: Path, max_pixels: int) -> tuple[list[Any], np.ndarray]:
    """Every item's photo (a blank image where it is missing or unreadable) and a has-image mask."""
    from PIL import Image

    from modules.images import ImageError, load_image

    images, has_image = [], np.zeros(len(items), dtype=bool)
    for i, rel in enumerate(tqdm(items["image_path"].fillna("").astype(str), desc="load images", unit="img")):
        img = None
        if rel:
            try:
                img = load_image(data_dir / rel, max_pixels=max_pixels)
                has_image[i] = True
            except (ImageError, OSError) as exc:
                log.warning("item %s: image %s unusable (%s); using a blank image", items["item_id"].iloc[i], rel, exc)
        images.append(img if img is not None else Image.new("RGB", (64, 64), (255, 255, 255)))
    return images, has_image


def generate(data_dir: str, out_dir: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """Write text.npy, image.npy, color.npy, item_ids.json and image_tower/ to ``out_dir``; return stats."""
    from modules.data_io import item_text
    from modules.encoders.color import color_features_and_name
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

    images, has_image = _load_images(items, root, int(params.get("serving", {}).get("max_image_pixels", 40_000_000)))
    pairs = [color_features_and_name(img, params, seed=seed) for img in tqdm(images, desc="colour features", unit="img")]
    color = np.stack([f for f, _ in pairs])
    color_names = [name if ok else "" for (_, name), ok in zip(pairs, has_image, strict=True)]
    t1 = time.time()
    with child_run("training:image_tower", params={f"tower.{k}": v for k, v in enc_params.get("tower", {}).items()}) as run:
        with emissions("image_tower", out / "codecarbon") as em:
            tower = ImageTower.train(images, text_emb, params, seed=seed, progress=True, color_feats=color)
        import mlflow

        mlflow.log_metrics({"n_items": len(items), "n_with_image": int(has_image.sum()), "train_seconds": time.time() - t1})
        run_id = run.info.run_id
    image_emb = tower.encode_images(images)
    image_emb[~has_image] = 0.0
    color[~has_image] = 0.0

    np.save(out / TEXT_FILE, text_emb.astype(np.float32))
    np.save(out / IMAGE_FILE, image_emb.astype(np.float32))
    np.save(out / COLOR_FILE, color.astype(np.float32))
    (out / IDS_FILE).write_text(json.dumps(items["item_id"].astype(str).tolist()))
    (out / COLOR_NAMES_FILE).write_text(json.dumps(color_names))
    tower.save(out / TOWER_DIR)
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
