"""EmbeddingGen's photo pass: each catalog photo is decoded ONCE, and its colour features, its named colour, its
"same photo" fingerprint (``modules.encoders.fingerprint``) and (for the ``backbone`` image kind) its frozen backbone
features are all computed from that one decode.

The pass runs over :func:`modules.data.images.map_photos` (the one home of parallel photo iteration). A photo that
cannot be decoded is unreadable for both (its item becomes text-only), exactly as when the colour and backbone
passes each decoded it on their own: both used :func:`modules.data.images.load_image` with the same limits.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class PhotoPass:
    """Row ``i`` belongs to ``paths[i]`` (zeros / "" where ``readable[i]`` is False)."""

    color: np.ndarray
    names: list[str]
    readable: np.ndarray
    backbone: np.ndarray | None  # (n, feature_dim) raw frozen features, None when no backbone was asked for
    fingerprints: np.ndarray     # (n, 3 * encoders.fingerprint.grid**2) uint8, zeros: no readable photo
    seconds: dict[str, float] = field(default_factory=dict)  # photo_pass: wall; decode/colour/backbone: worker time


def photo_features(path: str, params: Mapping[str, Any], seed: int, max_pixels: int, min_side: int,
                   backbone: str | None, grid: int
                   ) -> tuple[np.ndarray, str, np.ndarray | None, np.ndarray, tuple[float, float, float]] | None:
    """(colour features, colour name, backbone features or None, fingerprint, (decode, colour, backbone) seconds)
    of one photo from one decode, or None (logged) when it cannot be read. The fingerprint's few microseconds count
    as colour time."""
    from modules.data.images import ImageError, load_image
    from modules.encoders.color import color_features_and_name
    from modules.encoders.fingerprint import photo_fingerprint

    t0 = time.perf_counter()
    try:
        img = load_image(path, max_pixels=max_pixels, min_side=min_side)
    except (ImageError, OSError) as exc:
        log.warning("photo pass: %s unusable (%s)", path, exc)
        return None
    t1 = time.perf_counter()
    feats, name = color_features_and_name(img, dict(params), seed)
    fingerprint = photo_fingerprint(img, grid)
    t2 = time.perf_counter()
    bb = None
    if backbone:
        from modules.encoders.backbone import process_backbone

        bb = process_backbone(backbone).features([img])[0]
    return feats, name, bb, fingerprint, (t1 - t0, t2 - t1, time.perf_counter() - t2)


def photo_pass(paths: Sequence[str | Path | None], params: Mapping[str, Any], seed: int, backbone: str | None = None,
               *, workers: int, progress: bool = True, chunksize: int = 32) -> PhotoPass:
    """Colour features + names + fingerprints (+ backbone features when ``backbone`` names one) of every photo, one
    decode each, with the server's decode limits (``serving.max_image_pixels``, ``serving.min_image_side``)."""
    from modules.data.images import map_photos
    from modules.encoders.color import color_feature_dim
    from modules.settings import load_section

    n = len(paths)
    color = np.zeros((n, color_feature_dim(dict(params))), dtype=np.float32)
    names, readable = [""] * n, np.zeros(n, dtype=bool)
    grid = load_section("encoders.fingerprint", params.get("encoders", {}).get("fingerprint")).grid
    fingerprints = np.zeros((n, 3 * grid * grid), dtype=np.uint8)
    feats = None
    if backbone:
        from modules.encoders.backbone import backbone_spec, model_path

        spec = backbone_spec(backbone)
        model_path(spec)  # fail fast, in this process, when the package is missing
        feats = np.zeros((n, spec.feature_dim), dtype=np.float32)
    serving = params["serving"]
    job = partial(photo_features, params=dict(params), seed=seed, max_pixels=int(serving["max_image_pixels"]),
                  min_side=int(serving["min_image_side"]), backbone=backbone, grid=grid)
    rows = [i for i, p in enumerate(paths) if p is not None]
    spent = np.zeros(3)
    t0 = time.perf_counter()
    desc = "photos (colour + backbone)" if backbone else "photos (colour)"
    for i, res in zip(rows, map_photos(job, [paths[i] for i in rows], workers, chunksize, progress, desc),
                      strict=True):
        if res is None:
            continue
        color[i], names[i], bb, fingerprints[i], secs = res
        if feats is not None:
            feats[i] = bb
        readable[i] = True
        spent += secs
    seconds = {"photo_pass": time.perf_counter() - t0, "photo_decode": float(spent[0]),
               "photo_colour": float(spent[1]), "photo_backbone": float(spent[2])}
    return PhotoPass(color, names, readable, feats, fingerprints, seconds)
