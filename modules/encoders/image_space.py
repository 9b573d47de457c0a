"""The one place that turns a catalog's photos into image vectors, for the pipeline (EmbeddingGen) and the benchmark.

``encoders.image.kind`` picks the image space:
- ``backbone`` (default): frozen pretrained backbone features, cached, + a LiT text head (:mod:`modules.encoders.lit`);
- ``tower``: the small CNN trained from pixels towards the SBERT space (:mod:`modules.encoders.tower`; slower);
- ``clip``: a local CLIP directory (image and text towers both pretrained);
- ``color``: the model-free colour/texture descriptor (no text alignment).

``load_image_encoder`` reads back whichever was saved (the bundle's ``image_tower/`` folder).
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

ENCODER_FILE = "encoder.json"  # {"kind": ...} for kinds rebuilt from params (clip, color)
BACKBONE_FEATS_FILE = "backbone_features.npy"  # the cached frozen features (EmbeddingGen artifact)


@dataclass
class CatalogImages:
    """Image vectors of a catalog: row ``i`` belongs to item ``i`` (zeros where ``has_image`` is False)."""

    encoder: Any
    vectors: np.ndarray
    has_image: np.ndarray
    backbone_feats: np.ndarray | None = None  # raw frozen features (kind backbone), reused by attribute filling
    seconds: dict[str, float] = field(default_factory=dict)


def image_kind(params: Mapping[str, Any]) -> str:
    return str(params.get("encoders", {}).get("image", {}).get("kind", "backbone"))


def embed_catalog_images(paths: Sequence[Path | None], readable: np.ndarray, text_emb: np.ndarray,
                         color_feats: np.ndarray, params: Mapping[str, Any], seed: int,
                         progress: bool = True, backbone_feats: np.ndarray | None = None) -> CatalogImages:
    """Embed every readable photo (``readable[i]``: photo ``i`` decoded in the colour pass) in the configured space.
    ``backbone_feats``: the frozen features the photo pass computed from the same decode (kind ``backbone``;
    without them the photos are decoded again here)."""
    kind = image_kind(params)
    if kind == "backbone":
        return _backbone(paths, readable, text_emb, params, seed, progress, backbone_feats)
    rows = np.flatnonzero(readable)
    t0 = time.perf_counter()
    if kind == "tower":
        from modules.encoders.tower import ImageTower

        if len(rows) < 2:
            raise ValueError(f"{len(rows)} readable item photo(s); the image tower needs at least 2")
        enc: Any = ImageTower.train([paths[i] for i in rows], text_emb[rows], dict(params), seed=seed,
                                    progress=progress, color_feats=color_feats[rows], images_checked=True)
        t_train = time.perf_counter() - t0
        vecs = np.zeros((len(paths), enc.dim), np.float32)
        vecs[rows] = enc.encode_paths([paths[i] for i in rows], batch_size=256, progress=progress, on_error="zero",
                                      color_feats=color_feats[rows])
        return CatalogImages(enc, vecs, readable.copy(), None,
                             {"train": t_train, "encode": time.perf_counter() - t0 - t_train})
    from modules.data.images import load_image
    from modules.encoders.base import make_image_encoder

    enc = make_image_encoder(dict(params), kind=kind)
    vecs = np.zeros((len(paths), enc.dim), np.float32)
    serving = params["serving"]  # the same decode limits as the colour pass and the server
    for i in rows:
        img = load_image(paths[i], max_pixels=int(serving["max_image_pixels"]), min_side=int(serving["min_image_side"]))
        vecs[i] = enc.encode_images([img])[0]
    return CatalogImages(enc, vecs, readable.copy(), None, {"encode": time.perf_counter() - t0})


def _backbone(paths: Sequence[Path | None], readable: np.ndarray, text_emb: np.ndarray, params: Mapping[str, Any],
              seed: int, progress: bool, precomputed: np.ndarray | None = None) -> CatalogImages:
    from modules.encoders.backbone import Backbone, features_for_paths
    from modules.encoders.lit import LitEncoder

    cfg = dict(params.get("encoders", {}).get("backbone", {}))
    rows = np.flatnonzero(readable)
    if len(rows) < 2:
        raise ValueError(f"{len(rows)} readable item photo(s); LiT needs at least 2 (text, photo) pairs")
    t0 = time.perf_counter()
    serving = params["serving"]
    if precomputed is not None:  # the photo pass: same decode, same limits, so the same readable rows
        feats_rows, ok = precomputed[rows], np.ones(len(rows), bool)
    else:
        feats_rows, ok = features_for_paths([paths[i] for i in rows], cfg["model"], workers=int(cfg["workers"]),
                                            max_pixels=int(serving["max_image_pixels"]),
                                            min_side=int(serving["min_image_side"]), progress=progress)
    t_feat = time.perf_counter() - t0
    rows, feats_rows = rows[ok], feats_rows[ok]
    has_image = np.zeros(len(paths), bool)
    has_image[rows] = True
    feats = np.zeros((len(paths), feats_rows.shape[1]), np.float32)
    feats[rows] = feats_rows
    info = Backbone(cfg["model"]).describe()
    enc = LitEncoder.train(text_emb[rows], feats_rows, info, params, seed, progress)
    vecs = np.zeros((len(paths), enc.dim), np.float32)
    vecs[rows] = enc.image_vectors(feats_rows)
    seconds = {"lit_training": time.perf_counter() - t0 - t_feat}
    if precomputed is None:
        seconds["backbone_features"] = t_feat
    return CatalogImages(enc, vecs, has_image, feats, seconds)


def save_image_encoder(encoder: Any, directory: str | Path, kind: str) -> Path:
    """Save a trained encoder (LiT, tower) or, for kinds rebuilt from params, a one-line marker."""
    d = Path(directory)
    if hasattr(encoder, "save"):
        encoder.save(d)
    else:
        d.mkdir(parents=True, exist_ok=True)
    (d / ENCODER_FILE).write_text(json.dumps({"kind": kind, "name": getattr(encoder, "name", kind),
                                              "dim": int(encoder.dim)}))
    return d


def saved_kind(directory: str | Path) -> str | None:
    path = Path(directory) / ENCODER_FILE
    return json.loads(path.read_text())["kind"] if path.is_file() else None


def load_image_encoder(directory: str | Path, params: Mapping[str, Any]) -> Any:
    """The image encoder saved in ``directory`` by :func:`save_image_encoder` (older bundles: a tower)."""
    d = Path(directory)
    kind = saved_kind(d) or "tower"
    if kind == "backbone":
        from modules.encoders.lit import LitEncoder

        return LitEncoder.load(d)
    if kind == "tower":
        from modules.encoders.tower import ImageTower

        return ImageTower.load(d)
    from modules.encoders.base import make_image_encoder

    return make_image_encoder(dict(params), kind=kind)
