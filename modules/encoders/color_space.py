"""sRGB -> CIE Lab conversion (D65), shared by the colour vocabulary and the colour features, and the row-wise
cache both colour stages use (background distances, pixel names)."""
from __future__ import annotations

from typing import Any

import numpy as np

# sRGB (linear) -> XYZ matrix and the D65 white point (IEC 61966-2-1; CIE 15).
_SRGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)
_D65_WHITE = np.array([0.95047, 1.0, 1.08883])


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (uint8 or float in 0..255, shape (..., 3)) -> CIE Lab (D65), float64 (..., 3)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = lin @ _SRGB_TO_XYZ.T / _D65_WHITE
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    L = 116 * f[..., 1] - 16
    a = 500 * (f[..., 0] - f[..., 1])
    b = 200 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b], axis=-1)


def per_distinct_row(fn: Any, rows: np.ndarray) -> np.ndarray:
    """``fn(rows)`` for a row-wise ``fn``, computed once per distinct row and spread back with ``np.unique``'s
    inverse: the same values bit for bit (each row's result depends on that row alone)."""
    if len(rows) > 1:
        rows = np.ascontiguousarray(rows)
        # one opaque key per row (its bytes): a 1-D unique, ~5x faster than ``np.unique(axis=0)``'s lexicographic sort
        keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).reshape(-1)
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        if len(first) < len(rows):
            return fn(rows[first])[inverse.reshape(-1)]
    return fn(rows)
