"""Colour stage 3, features: the model-free image feature vector (colour histogram, texture statistics, the share of
the item's pixels per basic colour) and the always-available ``color`` image encoder. No TensorFlow here, so these work everywhere (ingest
reports, the CLI, the server's query parsing).

The stages a photo passes through: :mod:`modules.encoders.color_mask` (64x64 thumbnail, foreground segmentation),
:mod:`modules.encoders.color_naming` (CIE Lab prototypes from the XKCD survey, per-pixel colour votes), then this
module. Settings: ``params.yaml`` ``encoders.color`` (:mod:`modules.encoders.color_settings`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from modules.config import param_seed
from modules.encoders.color_mask import foreground_mask, thumbnail
from modules.encoders.color_naming import COLOR_NAMES, naming_settings, vote_colors
from modules.encoders.color_settings import color_settings

DEFAULT_BINS: tuple[int, int, int] = (8, 4, 4)
N_TEXTURE = 8


def color_histogram(img: Image.Image, bins: Sequence[int] = DEFAULT_BINS, ignore_background: bool = True) -> np.ndarray:
    """Joint HSV histogram with ``bins`` = (h, s, v) bins, L1-normalised, float32 of length h*s*v."""
    rgb = thumbnail(img)
    mask = foreground_mask(rgb) if ignore_background else np.ones(rgb.shape[:2], dtype=bool)
    return _histogram(rgb, mask, bins)


def _histogram(rgb: np.ndarray, mask: np.ndarray, bins: Sequence[int]) -> np.ndarray:
    if len(bins) != 3 or min(bins) < 1:
        raise ValueError(f"bins must be three positive ints, got {bins}")
    hsv_img = Image.fromarray(rgb.astype(np.uint8), "RGB").convert("HSV")
    hsv = np.asarray(hsv_img, dtype=np.float64)[mask]
    hist, _ = np.histogramdd(hsv, bins=tuple(int(b) for b in bins), range=((0, 256), (0, 256), (0, 256)))
    hist = hist.ravel().astype(np.float32)
    total = hist.sum()
    return hist / total if total > 0 else hist


def texture_features(img: Image.Image) -> np.ndarray:
    """Eight texture statistics of the grey-level image, float32:

    [edge density, mean gradient magnitude, orientation energy at 0/45/90/135 degrees (sums to 1),
    Laplacian (fine detail) energy, grey-level standard deviation]. All lie roughly in [0, 1].
    """
    return _texture(thumbnail(img))


def _texture(rgb: np.ndarray) -> np.ndarray:
    grey = rgb @ np.array([0.299, 0.587, 0.114]) / 255.0
    gx = np.zeros_like(grey)
    gy = np.zeros_like(grey)
    gx[:, 1:-1] = (grey[:, 2:] - grey[:, :-2]) / 2.0
    gy[1:-1, :] = (grey[2:, :] - grey[:-2, :]) / 2.0
    mag = np.hypot(gx, gy)
    edge_density = float((mag > 0.08).mean())
    mean_mag = float(mag.mean()) * 4.0
    theta = np.mod(np.arctan2(gy, gx), np.pi)  # orientation, 0..pi
    bins = np.floor(((theta + np.pi / 8) % np.pi) / (np.pi / 4)).astype(int)  # 4 bins centred on 0/45/90/135
    energy = np.bincount(bins.ravel(), weights=(mag**2).ravel(), minlength=4)[:4]
    energy = energy / energy.sum() if energy.sum() > 0 else np.full(4, 0.25)
    lap = np.zeros_like(grey)
    lap[1:-1, 1:-1] = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1]
    lap_energy = float(np.sqrt((lap**2).mean())) * 4.0
    std = float(grey.std()) * 2.0
    return np.array([edge_density, mean_mag, *energy, lap_energy, std], dtype=np.float32)


def color_features(img: Image.Image, params: dict[str, Any] | None = None, seed: int | None = None) -> np.ndarray:
    """Model-free feature vector (see :func:`color_features_and_name`)."""
    return color_features_and_name(img, params, seed)[0]


def color_features_and_name(
    img: Image.Image, params: dict[str, Any] | None = None, seed: int | None = None
) -> tuple[np.ndarray, str]:
    """(features, named dominant colour) from one thumbnail, mask and vote pass. Features, model-free:
    ``[sqrt(HSV histogram), weighted unit texture, weighted colour shares]``.

    ``params`` may be the full params dict or its ``encoders.color`` section. The sqrt histogram has unit L2 norm,
    so cosine similarity of two vectors is dominated by colour (Hellinger affinity), then texture, then the shares.
    The last :data:`COLOR_NAMES`-long block is each basic colour's share of the item's pixel votes times
    ``encoders.color.share_weight`` (read back with :func:`color_shares`). ``seed`` (the pixel votes' sample) not
    given: the run's (:func:`modules.config.param_seed`).
    """
    seed = param_seed(params) if seed is None else seed
    cfg = color_settings(params)
    rgb = thumbnail(img)  # thumbnail and mask once; the three blocks share them
    mask = foreground_mask(rgb, cfg)
    hist = np.sqrt(_histogram(rgb, mask, cfg["histogram_bins"]))
    tex = _texture(rgb)
    tex = tex / max(float(np.linalg.norm(tex)), 1e-9) * cfg["texture_weight"]
    votes = vote_colors(rgb[mask], naming_settings(rgb, cfg), len(COLOR_NAMES), cfg["sample_pixels"], seed)
    shares = np.zeros(len(COLOR_NAMES), dtype=np.float32)
    for name, share, _ in votes:
        shares[COLOR_NAMES.index(name)] = share
    return np.concatenate([hist, tex, shares * cfg["share_weight"]]).astype(np.float32), votes[0][0]


def color_shares(color_feats: np.ndarray, params: dict[str, Any] | None = None) -> np.ndarray:
    """Each row's share of pixel votes per basic colour, ``(n, len(COLOR_NAMES))`` in :data:`COLOR_NAMES` order,
    read from :func:`color_features` rows (zero rows: no photo). Features written before the shares block held
    a one-hot of the dominant colour there, which reads back as a share of 1.0 for that colour."""
    weight = color_settings(params)["share_weight"]
    block = np.asarray(color_feats, dtype=np.float32)[:, -len(COLOR_NAMES):]
    return block / weight if weight > 0 else np.zeros_like(block)


def path_color_features(
    path: str | Path, params: dict[str, Any] | None, seed: int, max_pixels: int, min_side: int
) -> tuple[np.ndarray, str] | None:
    """:func:`color_features_and_name` of an image file, or None (logged) when it cannot be read."""
    from modules.data.images import ImageError, load_image

    try:
        img = load_image(path, max_pixels=max_pixels, min_side=min_side)
    except (ImageError, OSError) as exc:
        logging.getLogger(__name__).warning("colour features: %s unusable (%s)", path, exc)
        return None
    return color_features_and_name(img, params, seed)


def color_features_for_paths(
    paths: Sequence[str | Path], params: dict[str, Any] | None, seed: int, workers: int, max_pixels: int,
    min_side: int, progress: bool = True,
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(features (n, dim), dominant colour names, readable mask) for image files, decoded one at a time (never
    all in memory) with the caller's decode limits. ``workers`` > 1 spreads the files over that many spawned
    processes (numpy + PIL only)."""
    from functools import partial

    from modules.data.images import map_photos

    n = len(paths)
    feats = np.zeros((n, color_feature_dim(params)), dtype=np.float32)
    names, ok = [""] * n, np.zeros(n, dtype=bool)
    job = partial(path_color_features, params=color_settings(params), seed=seed, max_pixels=max_pixels,
                  min_side=min_side)   # resolved once here, not once per photo
    for i, res in enumerate(map_photos(job, paths, workers, chunksize=64, progress=progress, desc="colour features")):
        if res is not None:
            feats[i], names[i] = res
            ok[i] = True
    return feats, names, ok


def color_feature_dim(params: dict[str, Any] | None = None) -> int:
    bins = color_settings(params)["histogram_bins"]
    return int(np.prod(bins)) + N_TEXTURE + len(COLOR_NAMES)


class ColorEncoder:
    """The always-available image encoder: L2-normalised :func:`color_features` (implements ``ImageEncoder``)."""

    name = "color"

    def __init__(self, params: dict[str, Any] | None = None, seed: int | None = None) -> None:
        self.params = params
        self.seed = param_seed(params) if seed is None else seed
        self.dim = color_feature_dim(params)

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        for i, img in enumerate(images):
            v = color_features(img, self.params, seed=self.seed)
            out[i] = v / max(float(np.linalg.norm(v)), 1e-12)
        return out
