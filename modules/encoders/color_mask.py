"""Colour stage 1, foreground segmentation: which pixels of a photo are the item (no TensorFlow here).

All colour features are computed on a 64x64 thumbnail (fast, and resolution-independent). Background handling
(:func:`foreground_mask`):

* studio shots (the border is near-uniform): the background is the region connected to the image border whose
  colour lies within a Lab tolerance of the border colour (a flood fill from the border). A white shirt on a white
  background is enclosed by its outline and shading, so it stays foreground instead of being thrown away as
  "background-coloured";
* busy photos (no uniform border): the exposure is normalised first, then the pixels are clustered in Lab and the
  clusters denser in the centre than along the border are kept as the subject (the subject is usually centred,
  clutter reaches the edges).

Next stages: :mod:`modules.encoders.color_naming` (names of the foreground pixels) and
:mod:`modules.encoders.color` (the feature vector).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.spatial.distance import cdist

from modules.config import param_seed
from modules.encoders import color_space
from modules.encoders.color_settings import color_settings
from modules.encoders.color_space import rgb_to_lab

_THUMB = 64  # all features are computed on a 64x64 thumbnail (fast, and resolution-independent)
_BG_TOLERANCE = 12.0  # Lab distance to the border median under which a border pixel is "uniform"
_BORDER_UNIFORM = 0.8  # share of border pixels within _BG_TOLERANCE of their median for a studio background
# (measured at 64x64: synthetic studio renders >= 0.95, real white-background photos >= 0.86,
#  synthetic street photos median 0.37, max 0.86 -- with a 2x looser tolerance dark street scenes passed)
_MIN_FOREGROUND = 0.04  # below this the item is the same colour as the background: use all pixels
_SCENE_CLUSTERS = 6  # Lab k-means clusters of a busy scene (subject vs clutter)
_CENTRE_RADIUS = 0.5  # normalised radius of the "centre" disc of a busy scene
_BORDER_RADIUS = 0.85  # pixels beyond this normalised radius count as the scene's border
_SUBJECT_LIFT = 0.5  # clusters whose centre-vs-border lift reaches this share of the best one
_EXPOSURE_PERCENTILE = 99.0  # busy scenes: this percentile of the max channel is mapped to _EXPOSURE_TARGET
_EXPOSURE_TARGET = 245.0


def _raw_thumbnail(img: Image.Image) -> np.ndarray:
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img.resize((_THUMB, _THUMB), Image.BILINEAR), dtype=np.float64)


def _border_lab(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The border pixels of a Lab image and which of them lie near the border's median colour."""
    border = np.concatenate([lab[0], lab[-1], lab[1:-1, 0], lab[1:-1, -1]])
    median = np.median(border, axis=0)
    return border, np.sqrt(((border - median) ** 2).sum(axis=1)) < _BG_TOLERANCE


def is_busy_scene(rgb: np.ndarray) -> bool:
    """True when the border of an (H, W, 3) RGB array is not a near-uniform studio background."""
    _, near = _border_lab(rgb_to_lab(rgb))
    return bool(near.mean() < _BORDER_UNIFORM)


def normalize_exposure(rgb: np.ndarray) -> np.ndarray:
    """Scale an under- or over-exposed (H, W, 3) RGB array so its brightest pixels (the
    ``_EXPOSURE_PERCENTILE`` of the per-pixel max channel) sit at ``_EXPOSURE_TARGET``."""
    peak = float(np.percentile(rgb.max(axis=2), _EXPOSURE_PERCENTILE))
    return np.clip(rgb * (_EXPOSURE_TARGET / max(peak, 1.0)), 0.0, 255.0)


def thumbnail(img: Image.Image) -> np.ndarray:
    """64x64 RGB float array; busy scenes (street photos) are exposure-normalised (studio shots are left as is)."""
    rgb = _raw_thumbnail(img)
    return normalize_exposure(rgb) if is_busy_scene(rgb) else rgb


def _scene_subject_mask(lab: np.ndarray, seed: int) -> np.ndarray:
    """Subject of a busy scene: Lab k-means clusters whose share of the centre disc exceeds their share of the
    border ring (clutter reaches the edges, the subject sits in the middle). Falls back to the centre disc."""
    h, w, _ = lab.shape
    yy, xx = np.mgrid[0:h, 0:w]
    radius = np.sqrt(((yy - h / 2 + 0.5) / (h / 2)) ** 2 + ((xx - w / 2 + 0.5) / (w / 2)) ** 2)
    centre, border = radius < _CENTRE_RADIUS, radius > _BORDER_RADIUS
    flat = lab.reshape(-1, 3)
    rng = np.random.default_rng(seed)
    sample = flat[rng.choice(len(flat), size=min(len(flat), 2048), replace=False)]
    centres, _ = _kmeans(sample, _SCENE_CLUSTERS, seed=seed)
    labels = np.argmin(cdist(flat, centres, "sqeuclidean"), axis=1).reshape(h, w)
    lift = np.array([(labels[centre] == j).mean() - (labels[border] == j).mean() for j in range(len(centres))])
    if lift.max() <= 0:
        return centre
    mask = np.isin(labels, np.flatnonzero(lift >= _SUBJECT_LIFT * lift.max()))
    return mask if mask.mean() >= _MIN_FOREGROUND else centre


def foreground_mask(rgb: np.ndarray, params: dict[str, Any] | None = None) -> np.ndarray:
    """Boolean (H, W) mask of non-background pixels of an (H, W, 3) RGB array (see module docstring). A busy scene's
    k-means is seeded with the run's seed (``params["seed"]``, else params.yaml's: ``params`` may be one section)."""
    lab = rgb_to_lab(rgb)
    border, near = _border_lab(lab)
    if near.mean() < _BORDER_UNIFORM:
        return _scene_subject_mask(lab, param_seed(params))  # busy scene (e.g. a street photo)
    cfg = color_settings(params)
    fg = _studio_foreground(lab, border[near], cfg)
    if fg.mean() < _MIN_FOREGROUND:
        return np.ones(fg.shape, dtype=bool)  # nothing but background: name the whole photo
    return fg


def subject_box(img: Image.Image, margin: float, percentile: float) -> tuple[int, int, int, int] | None:
    """The box (x0, y0, x1, y1, in ``img`` pixels) around the subject of a busy scene, or None for a studio shot
    (or when too little subject is found). The subject mask is the one colour naming uses; the box spans its
    ``percentile``..100-``percentile`` extent (stray clutter pixels are ignored), grown by ``margin`` of its side."""
    rgb = _raw_thumbnail(img)
    if not is_busy_scene(rgb):
        return None
    ys, xs = np.nonzero(foreground_mask(rgb))
    if len(xs) < _MIN_FOREGROUND * _THUMB * _THUMB:
        return None
    (x0, x1), (y0, y1) = np.percentile(xs, [percentile, 100 - percentile]), np.percentile(ys, [percentile, 100 - percentile])
    pad = margin * max(x1 - x0, y1 - y0)
    sx, sy = img.width / _THUMB, img.height / _THUMB
    box = (max(0.0, (x0 - pad) * sx), max(0.0, (y0 - pad) * sy), min(img.width, (x1 + pad + 1) * sx),
           min(img.height, (y1 + pad + 1) * sy))
    return tuple(int(round(v)) for v in box)  # type: ignore[return-value]


def _studio_foreground(lab: np.ndarray, border_colours: np.ndarray, cfg: dict[str, Any]) -> np.ndarray:
    """Foreground of a studio shot: everything except the background-coloured region connected to the border.

    A pixel is background-coloured when it lies within ``background_tolerance`` (Lab) of one of the border's
    colours (a sample of <= ~64 covers lighting gradients). The flood fill from the border (4-connected components
    touching it) may not pass through gaps narrower than ``background_gap_closing`` pixels next to the item's
    outline, so a white garment whose outline is faint in places stays foreground. ``edge_erosion`` pixels are
    then peeled off the foreground (anti-aliased edge pixels mix item and background)."""
    h, w, _ = lab.shape
    ref = border_colours[:: max(1, len(border_colours) // 64)]
    d2 = color_space.per_distinct_row(lambda rows: cdist(rows, ref, "sqeuclidean").min(axis=1), lab.reshape(-1, 3)).reshape(h, w)
    bg_like = d2 < cfg["background_tolerance"] ** 2
    gap = cfg["background_gap_closing"]
    passable = bg_like & ~ndimage.binary_dilation(~bg_like, iterations=gap) if gap > 0 else bg_like
    labels, _ = ndimage.label(passable)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    background = np.isin(labels, edge[edge > 0])
    if gap > 0:
        background = ndimage.binary_dilation(background, iterations=gap) & bg_like
    fg = ~background
    if cfg["edge_erosion"] > 0:
        eroded = ndimage.binary_erosion(fg, iterations=cfg["edge_erosion"])
        fg = eroded if eroded.mean() >= _MIN_FOREGROUND else fg
    return fg


def _kmeans(x: np.ndarray, k: int, seed: int, iters: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Small deterministic k-means (k-means++ init). Returns (centres (k', 3), labels (n,)).

    k' < k when ``x`` has fewer than k distinct points (the k-means++ draw stops once every point is a centre).
    Runs once or twice per photo (colour pass, tower augmentation), so the update step is vectorised.
    """
    rng = np.random.default_rng(seed)
    k = max(1, min(k, len(x)))
    centres = [x[rng.integers(len(x))]]
    d2 = ((x - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        if d2.sum() <= 0:
            break
        centres.append(x[rng.choice(len(x), p=d2 / d2.sum())])
        d2 = np.minimum(d2, ((x - centres[-1]) ** 2).sum(axis=1))
    c = np.array(centres)
    labels = np.zeros(len(x), dtype=int)
    for _ in range(iters):
        labels = np.argmin(cdist(x, c, "sqeuclidean"), axis=1)
        counts = np.bincount(labels, minlength=len(c))[:, None]
        sums = np.stack([np.bincount(labels, weights=x[:, d], minlength=len(c)) for d in range(x.shape[1])], axis=1)
        new = np.where(counts > 0, sums / np.maximum(counts, 1), c)
        if np.all(np.abs(new - c) <= 1e-8 + 1e-5 * np.abs(c)):  # np.allclose, without its overhead
            break
        c = new
    return c, labels
