"""A photo's perceptual fingerprint: "is this the same photo?", robust to re-encoding and resizing.

The photo box-resized to ``grid x grid`` RGB cells (``encoders.fingerprint.grid``), each cell its mean colour as
uint8 (``3 * grid**2`` bytes a photo: 192 at 8 x 8, 19 MB at 100K items). Two fingerprints are compared by the RMS
difference of their cells in grey levels: JPEG artefacts and resampling barely move a cell's mean (a product's own
photo, JPEG quality 85 at 80% size: at most ~1.6 levels on the fashion sample, ``bench/photo_duplicates.py``).

Why absolute colour and not a mean-centred grayscale (brightness-invariant) thumbnail: catalogs recolour one
studio shot per colour variant (the same shoe in brown and in olive), and those differ only in colour and
brightness; grayscale correlation put them closer to each other than a re-encoded photo is to itself.

A row of zeros is "no fingerprint" (an item without a usable photo): its distance to anything is ``inf``.
Pure numpy/PIL: the catalog's photo pass and the query path call the same :func:`photo_fingerprint`.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image


def photo_fingerprint(img: Image.Image, grid: int) -> np.ndarray:
    """The ``(3 * grid * grid,)`` uint8 fingerprint of a photo (any mode; compared as RGB)."""
    cells = img.convert("RGB").resize((grid, grid), Image.BOX)
    return np.asarray(cells, dtype=np.uint8).ravel()


def fingerprint_grid(fingerprints: np.ndarray) -> int:
    """The grid stored fingerprints (n, 3 * grid**2) were taken with: a query is fingerprinted the same way, whatever
    ``encoders.fingerprint.grid`` says now."""
    return math.isqrt(int(np.shape(fingerprints)[-1]) // 3)


def fingerprint_distance(query: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """RMS cell difference (grey levels) of the query fingerprint to each row of ``rows`` (n, dim); ``inf`` where
    either is all zeros (no fingerprint) or the sizes differ."""
    q = np.asarray(query, np.float32).ravel()
    m = np.asarray(rows, np.float32)
    out = np.full(len(m), np.inf, np.float32)
    if m.ndim != 2 or m.shape[1] != q.shape[0] or not q.any():
        return out
    ok = m.any(axis=1)
    out[ok] = np.sqrt(((m[ok] - q) ** 2).mean(axis=1))
    return out
