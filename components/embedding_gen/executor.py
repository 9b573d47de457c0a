"""EmbeddingGen logic: SBERT text embeddings, colour features, the image space (frozen backbone + LiT text head by
default) and attributes learned from the catalog's own labels."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from components.common import load_items
from modules.data.data_io import (
    EMB_ATTRIBUTES_FILE,
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


def _photo_pass(items: Any, paths: list[Path | None], params: dict[str, Any], seed: int, kind: str) -> Any:
    """One decode per photo: colour features and names, and (kind ``backbone``) the frozen backbone features, over
    ``encoders.backbone.workers`` (``encoders.color.workers`` without a backbone) processes. The pass also finds
    the unreadable photos (their items become text-only)."""
    from modules.encoders.photo_pass import photo_pass

    enc = params["encoders"]
    model = str(enc["backbone"]["model"]) if kind == "backbone" else None
    workers = int(enc["backbone"]["workers"] if model else enc["color"]["workers"])
    done = photo_pass(paths, params, seed, backbone=model, workers=workers)
    for i in np.flatnonzero(np.array([p is not None for p in paths]) & ~done.readable):
        log.warning("item %s: image %s unusable; the item is text-only", items["item_id"].iloc[i], paths[i])
    return done


def generate(data_dir: str, out_dir: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """Write text.npy, image.npy, color.npy, item_ids.json, attributes.json and image_tower/; return stats."""
    from modules.attributes import attribute_features, fill_attributes
    from modules.data.data_io import item_text
    from modules.encoders.image_space import BACKBONE_FEATS_FILE, embed_catalog_images, image_kind, save_image_encoder
    from modules.encoders.text import text_encoder_from_params
    from modules.tracking import child_run, emissions

    root, out = Path(data_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items = load_items(root)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    encoder = text_encoder_from_params(params)
    text_emb = encoder.encode(item_text(items), batch_size=int(params["encoders"]["text"]["batch_size"]),
                              progress=True)
    seconds["text"] = time.perf_counter() - t0

    paths = _image_paths(items, root)
    kind = image_kind(params)
    with child_run(f"training:image_{kind}", params={"encoders.image.kind": kind}) as run:
        with emissions(f"image_{kind}", out / "codecarbon") as em:  # the photo pass (colour too) + the image space
            photos = _photo_pass(items, paths, params, seed, kind)
            color, color_names, readable = photos.color, photos.names, photos.readable
            seconds.update(photos.seconds)
            images = embed_catalog_images(paths, readable, text_emb, color, params, seed,
                                          backbone_feats=photos.backbone)
        seconds.update(images.seconds)
        t0 = time.perf_counter()
        attr_cfg = params["attributes"]
        feats = attribute_features(images.vectors, color, float(attr_cfg["color_weight"]))
        attributes = fill_attributes(items, feats, images.has_image, attr_cfg, seed)
        seconds["attributes"] = time.perf_counter() - t0
        import mlflow

        mlflow.log_metrics({"n_items": len(items), "n_with_image": int(images.has_image.sum()),
                            **{f"seconds.{k}": v for k, v in seconds.items()},
                            **{f"attribute.{c}.held_out_accuracy": m["held_out_accuracy"]
                               for c, m in attributes["metrics"].items()}})
        run_id = run.info.run_id

    np.save(out / EMB_TEXT_FILE, text_emb.astype(np.float32))
    np.save(out / EMB_IMAGE_FILE, images.vectors.astype(np.float32))
    np.save(out / EMB_COLOR_FILE, color.astype(np.float32))
    if images.backbone_feats is not None:
        np.save(out / BACKBONE_FEATS_FILE, images.backbone_feats.astype(np.float32))
    (out / EMB_IDS_FILE).write_text(json.dumps(items["item_id"].astype(str).tolist()))
    (out / EMB_COLOR_NAMES_FILE).write_text(json.dumps(color_names))
    (out / EMB_ATTRIBUTES_FILE).write_text(json.dumps(attributes))
    save_image_encoder(images.encoder, out / EMB_TOWER_DIR, kind)
    n_paths = sum(p is not None for p in paths)
    history = getattr(images.encoder, "history", []) or []
    return {
        "n_items": len(items),
        "n_with_image": int(images.has_image.sum()),
        "n_photos_unusable": int(n_paths - images.has_image.sum()),
        "text_dim": int(text_emb.shape[1]),
        "image_dim": int(images.vectors.shape[1]),
        "image_kind": kind,
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "text_seconds": round(seconds["text"], 2),
        "lit_epochs": len(history),
        "lit_best_val_loss": min((h["val_loss"] for h in history), default=None),
        "attributes": attributes["metrics"],
        "emissions_kg": em.get("emissions_kg", 0.0),
        "mlflow_run_id": run_id,
    }
