"""Model-free image features: colour histogram, texture statistics and named dominant colours.

No TensorFlow here, so these work everywhere (ingest reports, the CLI, the server's query parsing) and as the
always-available ``color`` image encoder.

Colour names: 16 basic English colour terms (black ... teal, :data:`COLOR_NAMES`). Their RGB prototypes are the
~940 names of the XKCD colour survey (``matplotlib.colors.XKCD_COLORS``), each mapped to a basic term by its head
word (see :mod:`modules.encoders.color_vocab`, which documents the mapping). :data:`COLOR_TABLE` gives each term its
own survey colour (``xkcd:navy`` for navy, ...). Pixels are named by their nearest survey colour in CIE Lab.

Background handling (:func:`foreground_mask`):

* studio shots (the border is near-uniform): the background is the region connected to the image border whose
  colour lies within a Lab tolerance of the border colour (a flood fill from the border). A white shirt on a white
  background is enclosed by its outline and shading, so it stays foreground instead of being thrown away as
  "background-coloured";
* busy photos (no uniform border): the exposure is normalised first, then the pixels are clustered in Lab and the
  clusters denser in the centre than along the border are kept as the subject (the subject is usually centred,
  clutter reaches the edges).

The item's colours (:func:`named_colors`, :func:`dominant_colors`) are per-pixel votes of the foreground pixels:
each pixel votes for the basic term of its nearest survey colour, and the shares of the votes are reported.
Settings come from ``params.yaml`` ``encoders.color`` (see :func:`_color_cfg`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.spatial.distance import cdist

from modules.encoders.color_space import rgb_to_lab
from modules.encoders.color_vocab import BASIC_TERMS, basic_term_rgb, normalize_colour_word, survey_terms

# Basic term -> its own XKCD survey colour (a representative RGB; the prototypes are all the survey colours).
COLOR_TABLE: dict[str, tuple[int, int, int]] = basic_term_rgb()
COLOR_NAMES: list[str] = list(BASIC_TERMS)

DEFAULT_BINS: tuple[int, int, int] = (8, 4, 4)
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
N_TEXTURE = 8

# The ``encoders.color`` naming settings and their types (values: params.yaml, tuned on a seeded 1,500-photo
# subsample of the tuning half of the fashion sample: ``python -m bench.colour_naming --half tune --sample 1500``).
# background_tolerance: Lab distance to a border colour under which a pixel is background-coloured;
# background_gap_closing: the border flood fill does not pass through gaps narrower than this (pixels);
# edge_erosion: foreground pixels peeled off its edge (anti-aliased mixtures of item and background);
# chroma_gain / chroma_cap: photo chroma -> survey-swatch chroma (fabric photos are duller than screen swatches),
# boosted at most up to the cap; black_point / white_point: photo L* mapped to the survey's 0 and 100;
# achromatic_chroma: scaled chroma under which a pixel is black, grey or white by lightness (black_lightness,
# white_lightness); second_colour_share: named_colors reports a second colour from this share; skin_max_share:
# skin-like pixels are left out unless they are more of the item than this.
_NAMING_KEYS: dict[str, type] = {
    "background_tolerance": float, "background_gap_closing": int, "edge_erosion": int, "chroma_gain": float,
    "chroma_cap": float, "black_point": float, "white_point": float, "achromatic_chroma": float,
    "black_lightness": float, "white_lightness": float, "second_colour_share": float, "skin_max_share": float,
}
# CIE LCh ranges of skin tones (a model wearing the item): hue angle (degrees), chroma, lightness
_SKIN_KEYS: tuple[str, ...] = ("skin_hue", "skin_chroma", "skin_lightness")


# --------------------------------------------------------------------------------------------- colour names
def _prototypes() -> tuple[np.ndarray, list[str]]:
    """Lab prototypes (one per XKCD survey name) and the basic term each stands for."""
    table = survey_terms()
    rgbs = np.array([rgb for _, rgb in table.values()], dtype=np.float64)
    return rgb_to_lab(rgbs), [term for term, _ in table.values()]


_PROTO_LAB, _PROTO_NAMES = _prototypes()
_PROTO_INDEX = np.array([COLOR_NAMES.index(n) for n in _PROTO_NAMES])


def _name_indices(lab: np.ndarray) -> np.ndarray:
    """Index into :data:`COLOR_NAMES` of the nearest survey colour of each Lab row (n, 3)."""
    return _PROTO_INDEX[np.argmin(cdist(lab, _PROTO_LAB, "sqeuclidean"), axis=1)]


def nearest_color_name(rgb: Sequence[float] | np.ndarray) -> str:
    """Basic colour term of the XKCD survey colour nearest to ``rgb`` in CIE Lab."""
    lab = rgb_to_lab(np.asarray(rgb, dtype=np.float64).reshape(1, 3))
    return COLOR_NAMES[int(_name_indices(lab)[0])]


def normalize_color_name(word: str) -> str | None:
    """Map a colour word or label (any case: "Navy Blue", "gray", "Coffee Brown") to a basic term, or ``None``
    when it is not a colour word (e.g. "Multi"); see :func:`modules.encoders.color_vocab.normalize_colour_word`."""
    return normalize_colour_word(word)


# --------------------------------------------------------------------------------------------- pixels
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


def _thumbnail(img: Image.Image) -> np.ndarray:
    """64x64 RGB float array; busy scenes (street photos) are exposure-normalised (studio shots are left as is)."""
    rgb = _raw_thumbnail(img)
    return normalize_exposure(rgb) if is_busy_scene(rgb) else rgb


def _scene_subject_mask(lab: np.ndarray, seed: int = 42) -> np.ndarray:
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
    """Boolean (H, W) mask of non-background pixels of an (H, W, 3) RGB array (see module docstring)."""
    lab = rgb_to_lab(rgb)
    border, near = _border_lab(lab)
    if near.mean() < _BORDER_UNIFORM:
        return _scene_subject_mask(lab)  # busy scene (e.g. a street photo)
    cfg = _color_cfg(params)
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
    d2 = per_distinct_row(lambda rows: cdist(rows, ref, "sqeuclidean").min(axis=1), lab.reshape(-1, 3)).reshape(h, w)
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


def _item_pixels(img: Image.Image, params: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """The item's RGB pixels (n, 3) and the naming settings for this photo (see :func:`_naming_cfg`)."""
    rgb = _thumbnail(img)
    return rgb[foreground_mask(rgb, params)], _naming_cfg(rgb, params)


def _naming_cfg(rgb: np.ndarray, params: dict[str, Any] | None) -> dict[str, Any]:
    """``encoders.color`` settings for naming the pixels of ``rgb``: busy scenes were exposure-normalised already and
    carry colour casts that a chroma boost would turn into colours, so they are named without the boost."""
    cfg = _color_cfg(params)
    if is_busy_scene(rgb):
        cfg["chroma_gain"] = 1.0
    return cfg


# --------------------------------------------------------------------------------------------- features
def color_histogram(img: Image.Image, bins: Sequence[int] = DEFAULT_BINS, ignore_background: bool = True) -> np.ndarray:
    """Joint HSV histogram with ``bins`` = (h, s, v) bins, L1-normalised, float32 of length h*s*v."""
    rgb = _thumbnail(img)
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
    return _texture(_thumbnail(img))


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


def _kmeans(x: np.ndarray, k: int, seed: int = 42, iters: int = 20) -> tuple[np.ndarray, np.ndarray]:
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


def dominant_colors(
    img: Image.Image, k: int = 3, sample_pixels: int = 2048, seed: int = 42, params: dict[str, Any] | None = None
) -> list[tuple[str, float, tuple[int, int, int]]]:
    """The item's colours: ``[(name, share of the item's pixels, mean rgb), ...]``, largest first, at most ``k``.

    Every foreground pixel (up to ``sample_pixels``, a seeded sample) votes for the basic term of its nearest XKCD
    survey colour in CIE Lab; see :func:`named_colors` for the top colours with a minimum share."""
    return _dominant(*_item_pixels(img, params), k, sample_pixels, seed)


def named_colors(img: Image.Image, max_colors: int = 2, params: dict[str, Any] | None = None,
                 seed: int = 42) -> list[tuple[str, float]]:
    """Up to ``max_colors`` ``(name, share)`` of the item, largest first; colours after the first are kept only
    when their share reaches ``encoders.color.second_colour_share``."""
    cfg = _color_cfg(params)
    found = _dominant(*_item_pixels(img, params), len(COLOR_NAMES), cfg["sample_pixels"], seed)
    top = [(found[0][0], found[0][1])]
    top += [(n, share) for n, share, _ in found[1:] if share >= cfg["second_colour_share"]]
    return top[:max(1, max_colors)]


def _dominant(px: np.ndarray, cfg: dict[str, Any], k: int, sample_pixels: int,
              seed: int) -> list[tuple[str, float, tuple[int, int, int]]]:
    """Per-pixel votes of RGB pixels (n, 3) -> [(name, share, mean rgb)], largest share first, top ``k``.
    ``cfg``: the naming settings (:func:`_naming_cfg`)."""
    if len(px) > sample_pixels:
        px = px[np.random.default_rng(seed).choice(len(px), size=sample_pixels, replace=False)]
    lab = rgb_to_lab(px)
    keep = ~_skin_like(lab, cfg)
    if len(px) and keep.mean() >= 1.0 - cfg["skin_max_share"]:
        px, lab = px[keep], lab[keep]  # a model wearing the item: her skin is not its colour
    if len(px) == 0:
        return [("white", 1.0, COLOR_TABLE["white"])]  # nothing but background (a white studio)
    votes = _pixel_names(lab, cfg)
    counts = np.bincount(votes, minlength=len(COLOR_NAMES))
    out = []
    for j in np.argsort(-counts, kind="stable")[: max(1, k)]:
        if counts[j] == 0:
            break
        mean = tuple(int(round(v)) for v in px[votes == j].mean(axis=0))
        out.append((COLOR_NAMES[j], float(counts[j] / len(px)), mean))
    return out


def _pixel_names(lab: np.ndarray, cfg: dict[str, Any]) -> np.ndarray:
    """Index into :data:`COLOR_NAMES` of each photo pixel (Lab rows).

    Photos of fabric are duller and lighter in the darks than the survey's screen swatches, so a pixel is first
    mapped onto the survey's scale: chroma times ``chroma_gain`` (up to ``chroma_cap``; vivid pixels keep
    theirs, so flat swatches such as the survey's own colours still name themselves), lightness stretched so that ``black_point`` ->
    0 and ``white_point`` -> 100. Pixels still under ``achromatic_chroma`` are black / grey / white by lightness
    (``black_lightness``, ``white_lightness``); the others take the term of their nearest survey colour.

    Each step is row-wise, so each distinct Lab row is named once and the names are spread back (photos repeat
    few pixel values: the same answer, bit for bit, at a fraction of the distance computations)."""
    return per_distinct_row(lambda rows: _pixel_names_rows(rows, cfg), lab)


def per_distinct_row(fn: Any, rows: np.ndarray) -> np.ndarray:
    """``fn(rows)`` for a row-wise ``fn``, computed once per distinct row and spread back with ``np.unique``'s
    inverse: the same values bit for bit (each row's result depends on that row alone)."""
    if len(rows) > 1:
        distinct, inverse = np.unique(rows, axis=0, return_inverse=True)
        if len(distinct) < len(rows):
            return fn(distinct)[inverse.reshape(-1)]
    return fn(rows)


def _pixel_names_rows(lab: np.ndarray, cfg: dict[str, Any]) -> np.ndarray:
    """:func:`_pixel_names` without the per-distinct-row cache."""
    scaled = lab.copy()
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    boosted = np.maximum(chroma, np.minimum(chroma * cfg["chroma_gain"], cfg["chroma_cap"]))
    scaled[:, 1:] *= (boosted / np.maximum(chroma, 1e-9))[:, None]
    black, white = cfg["black_point"], cfg["white_point"]
    scaled[:, 0] = np.clip((lab[:, 0] - black) * 100.0 / max(white - black, 1e-6), 0.0, 100.0)
    idx = _name_indices(scaled)
    light = scaled[:, 0]
    grey_scale = np.where(light < cfg["black_lightness"], COLOR_NAMES.index("black"),
                          np.where(light > cfg["white_lightness"], COLOR_NAMES.index("white"),
                                   COLOR_NAMES.index("grey")))
    return np.where(boosted < cfg["achromatic_chroma"], grey_scale, idx)


def _skin_like(lab: np.ndarray, cfg: dict[str, Any]) -> np.ndarray:
    """Pixels in the skin tones' range of hue angle, chroma and lightness (CIE LCh; ``skin_*`` settings)."""
    hue = np.degrees(np.arctan2(lab[:, 2], lab[:, 1]))
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    (h0, h1), (c0, c1), (l0, l1) = cfg["skin_hue"], cfg["skin_chroma"], cfg["skin_lightness"]
    return (hue > h0) & (hue < h1) & (chroma > c0) & (chroma < c1) & (lab[:, 0] > l0) & (lab[:, 0] < l1)


def dominant_color_name(img: Image.Image, k: int = 3, seed: int = 42) -> str:
    """The single most prominent named colour of the item (background ignored)."""
    return dominant_colors(img, k=k, seed=seed)[0][0]


def color_features(img: Image.Image, params: dict[str, Any] | None = None, seed: int = 42) -> np.ndarray:
    """Model-free feature vector (see :func:`color_features_and_name`)."""
    return color_features_and_name(img, params, seed)[0]


def color_features_and_name(
    img: Image.Image, params: dict[str, Any] | None = None, seed: int = 42
) -> tuple[np.ndarray, str]:
    """(features, named dominant colour) from one thumbnail, mask and k-means pass. Features: model-free feature vector: [sqrt(HSV histogram), weighted unit texture, weighted one-hot dominant colour].

    ``params`` may be the full params dict or its ``encoders.color`` section. The sqrt histogram has unit L2 norm,
    so cosine similarity of two vectors is dominated by colour (Hellinger affinity), then texture, then the name.
    """
    cfg = _color_cfg(params)
    rgb = _thumbnail(img)  # thumbnail and mask once; the three blocks share them
    mask = foreground_mask(rgb, cfg)
    hist = np.sqrt(_histogram(rgb, mask, cfg["histogram_bins"]))
    tex = _texture(rgb)
    tex = tex / max(float(np.linalg.norm(tex)), 1e-9) * cfg["texture_weight"]
    onehot = np.zeros(len(COLOR_NAMES), dtype=np.float32)
    top = _dominant(rgb[mask], _naming_cfg(rgb, cfg), cfg["kmeans_k"], cfg["sample_pixels"], seed)[0][0]
    onehot[COLOR_NAMES.index(top)] = cfg["dominant_weight"]
    return np.concatenate([hist, tex, onehot]).astype(np.float32), top


def path_color_features(
    path: str | Path, params: dict[str, Any] | None = None, seed: int = 42, max_pixels: int = 40_000_000,
    min_side: int = 1,
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
    paths: Sequence[str | Path], params: dict[str, Any] | None = None, seed: int = 42, workers: int = 1,
    max_pixels: int = 40_000_000, progress: bool = True, min_side: int = 1,
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(features (n, dim), dominant colour names, readable mask) for image files, decoded one at a time (never
    all in memory). ``workers`` > 1 spreads the files over that many spawned processes (numpy + PIL only)."""
    from functools import partial

    from modules.data.images import map_photos

    n = len(paths)
    feats = np.zeros((n, color_feature_dim(params)), dtype=np.float32)
    names, ok = [""] * n, np.zeros(n, dtype=bool)
    job = partial(path_color_features, params=params, seed=seed, max_pixels=max_pixels, min_side=min_side)
    for i, res in enumerate(map_photos(job, paths, workers, chunksize=64, progress=progress, desc="colour features")):
        if res is not None:
            feats[i], names[i] = res
            ok[i] = True
    return feats, names, ok


def color_feature_dim(params: dict[str, Any] | None = None) -> int:
    bins = _color_cfg(params)["histogram_bins"]
    return int(np.prod(bins)) + N_TEXTURE + len(COLOR_NAMES)


def _color_cfg(params: dict[str, Any] | None) -> dict[str, Any]:
    """``encoders.color`` settings (``params`` may be the full params dict or that section) over params.yaml's:
    histogram_bins, kmeans_k (how many named colours :func:`color_features_and_name` keeps; only the first is
    used), sample_pixels, texture_weight, dominant_weight, and the naming settings of :data:`_NAMING_KEYS` and
    :data:`_SKIN_KEYS`."""
    from modules.settings import merge_section

    cfg = dict(params or {})
    if "encoders" in cfg:
        cfg = dict(cfg["encoders"].get("color", {}))
    c = merge_section("encoders.color", cfg)
    return {
        "histogram_bins": tuple(int(b) for b in c["histogram_bins"]),
        "kmeans_k": int(c["kmeans_k"]),
        "sample_pixels": int(c["sample_pixels"]),
        "texture_weight": float(c["texture_weight"]),
        "dominant_weight": float(c["dominant_weight"]),
        **{key: kind(c[key]) for key, kind in _NAMING_KEYS.items()},
        **{key: tuple(float(v) for v in c[key]) for key in _SKIN_KEYS},
    }


class ColorEncoder:
    """The always-available image encoder: L2-normalised :func:`color_features` (implements ``ImageEncoder``)."""

    name = "color"

    def __init__(self, params: dict[str, Any] | None = None, seed: int = 42) -> None:
        self.params = params
        self.seed = seed
        self.dim = color_feature_dim(params)

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        for i, img in enumerate(images):
            v = color_features(img, self.params, seed=self.seed)
            out[i] = v / max(float(np.linalg.norm(v)), 1e-12)
        return out
