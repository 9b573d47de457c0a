"""Model-free region proposals: background from the border, foreground mask, colour clusters, components.

1. The background colour is the median of a border strip; a pixel is foreground when its (blurred) colour is
   far from it (a fixed distance or a multiple of the border's spread, whichever is larger).
2. Each foreground connected component is a region (an isolated object: a bag beside a person, a lamp).
3. Foreground pixels are clustered by colour (seeded k-means, close centres merged); the connected components of
   each cluster (after a morphological closing that fills stripes and dots) are regions too: a top, a bottom and
   shoes of different colours touch, so the whole-foreground component alone would merge them.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage

from modules.look.regions import Region


def foreground_mask(arr: np.ndarray, cfg: Mapping[str, Any]) -> np.ndarray:
    """(h, w) bool: pixels far from the border's median colour."""
    h, w, _ = arr.shape
    b = max(1, int(round(float(cfg["border"]) * min(h, w))))
    border = np.concatenate([arr[:b].reshape(-1, 3), arr[-b:].reshape(-1, 3), arr[:, :b].reshape(-1, 3),
                             arr[:, -b:].reshape(-1, 3)])
    bg = np.median(border, axis=0)
    border_dist = np.linalg.norm(border - bg, axis=1)
    mad = float(np.median(np.abs(border_dist - np.median(border_dist))))
    thr = max(float(cfg["fg_threshold"]), float(cfg["fg_mad_factor"]) * (float(np.median(border_dist)) + mad))
    fg = np.linalg.norm(arr - bg, axis=2) > thr
    fg = ndimage.binary_opening(fg, iterations=1)
    return ndimage.binary_fill_holes(fg)


def kmeans_colors(pixels: np.ndarray, k: int, iters: int, seed: int) -> np.ndarray:
    """Seeded k-means (k-means++ start) cluster centres of (n, 3) colours."""
    rng = np.random.default_rng(seed)
    k = max(1, min(k, len(pixels)))
    centres = [pixels[rng.integers(len(pixels))]]
    for _ in range(1, k):
        d = np.min(((pixels[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1)
        if d.sum() <= 0:
            break
        centres.append(pixels[rng.choice(len(pixels), p=d / d.sum())])
    c = np.asarray(centres, dtype=np.float32)
    for _ in range(iters):
        lab = np.argmin(((pixels[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
        c = np.stack([pixels[lab == j].mean(0) if np.any(lab == j) else c[j] for j in range(len(c))])
    return c


def merge_centres(centres: np.ndarray, min_dist: float) -> np.ndarray:
    """Greedy merge: a centre closer than `min_dist` to a kept one joins it."""
    kept: list[np.ndarray] = []
    for c in centres:
        if all(np.linalg.norm(c - k) >= min_dist for k in kept):
            kept.append(c)
    return np.asarray(kept)


def _component_regions(mask: np.ndarray, min_area: int, label: str, full_area: float) -> list[Region]:
    """One region per connected component; confidence grows with solidity and size (up to `full_area` pixels):
    a product is a large, compact blob, a bare arm or a strap a thin or small one."""
    labels, n = ndimage.label(mask)
    out = []
    for idx, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        area = int(np.count_nonzero(labels[sl] == idx))
        if area < min_area:
            continue
        ys, xs = sl
        box_area = (ys.stop - ys.start) * (xs.stop - xs.start)
        conf = round(0.3 + 0.3 * area / max(box_area, 1) + 0.4 * min(1.0, area / full_area), 3)
        out.append(Region((float(xs.start), float(ys.start), float(xs.stop), float(ys.stop)), label, conf, "salient"))
    return out


def salient_regions(img: Image.Image, cfg: Mapping[str, Any], min_region_frac: float, seed: int) -> list[Region]:
    """Regions of a (small, RGB) working copy of the photo, in its pixels."""
    blurred = img.filter(ImageFilter.GaussianBlur(float(cfg["blur"]))) if float(cfg["blur"]) > 0 else img
    arr = np.asarray(blurred, dtype=np.float32)
    h, w, _ = arr.shape
    min_area = max(4, int(min_region_frac * h * w))
    fg = foreground_mask(arr, cfg)
    if np.count_nonzero(fg) < min_area:
        return []
    full = float(cfg["full_size_frac"]) * h * w
    regions = _component_regions(fg, min_area, "object", full)
    pixels = arr[fg]
    rng = np.random.default_rng(seed)
    fit = pixels[rng.choice(len(pixels), size=min(len(pixels), int(cfg["max_fit_pixels"])), replace=False)]
    centres = merge_centres(kmeans_colors(fit, int(cfg["n_colors"]), int(cfg["kmeans_iters"]), seed),
                            float(cfg["merge_color_dist"]))
    if len(centres) < 2:
        return regions
    lab = np.full((h, w), -1, dtype=np.int32)
    lab[fg] = np.argmin(((pixels[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    close = int(cfg["close_px"])
    for j in range(len(centres)):
        m = lab == j
        if close > 0:
            m = ndimage.binary_closing(m, iterations=close) & fg
        regions += _component_regions(m, min_area, "object", full)
    return regions
