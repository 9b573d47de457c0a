"""Colour stage 2, naming: the item's foreground pixels (:mod:`modules.encoders.color_mask`) -> basic colour terms.

Colour names: 16 basic English colour terms (black ... teal, :data:`COLOR_NAMES`). Their RGB prototypes are the
~940 names of the XKCD colour survey (``matplotlib.colors.XKCD_COLORS``), each mapped to a basic term by its head
word (see :mod:`modules.encoders.color_vocab`, which documents the mapping). :data:`COLOR_TABLE` gives each term its
own survey colour (``xkcd:navy`` for navy, ...). Pixels are named by their nearest survey colour in CIE Lab.

The item's colours (:func:`named_colors`, :func:`dominant_colors`) are per-pixel votes of the foreground pixels:
each pixel votes for the basic term of its nearest survey colour, and the shares of the votes are reported.
Settings come from ``params.yaml`` ``encoders.color`` (:func:`modules.encoders.color_settings.color_settings`).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image
from scipy.spatial.distance import cdist

from modules.config import param_seed
from modules.encoders import color_space
from modules.encoders.color_mask import foreground_mask, is_busy_scene, thumbnail
from modules.encoders.color_settings import ColorSettings, color_settings
from modules.encoders.color_space import rgb_to_lab
from modules.encoders.color_vocab import BASIC_TERMS, basic_term_rgb, normalize_colour_word, survey_terms

# Basic term -> its own XKCD survey colour (a representative RGB; the prototypes are all the survey colours).
COLOR_TABLE: dict[str, tuple[int, int, int]] = basic_term_rgb()
COLOR_NAMES: list[str] = list(BASIC_TERMS)


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


def _item_pixels(img: Image.Image, params: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """The item's RGB pixels (n, 3) and the naming settings for this photo (see :func:`naming_settings`)."""
    rgb = thumbnail(img)
    return rgb[foreground_mask(rgb, params)], naming_settings(rgb, params)


def naming_settings(rgb: np.ndarray, params: dict[str, Any] | None) -> dict[str, Any]:
    """``encoders.color`` settings for naming the pixels of ``rgb``: busy scenes were exposure-normalised already and
    carry colour casts that a chroma boost would turn into colours, so they are named without the boost."""
    cfg = color_settings(params)
    return ColorSettings({**cfg, "chroma_gain": 1.0}) if is_busy_scene(rgb) else cfg


def dominant_colors(
    img: Image.Image, k: int = 3, sample_pixels: int | None = None, seed: int | None = None,
    params: dict[str, Any] | None = None,
) -> list[tuple[str, float, tuple[int, int, int]]]:
    """The item's colours: ``[(name, share of the item's pixels, mean rgb), ...]``, largest first, at most ``k``.

    Every foreground pixel (up to ``sample_pixels``, a seeded sample; not given: ``encoders.color.sample_pixels``)
    votes for the basic term of its nearest XKCD survey colour in CIE Lab; see :func:`named_colors` for the top
    colours with a minimum share. ``seed`` not given: the run's (:func:`modules.config.param_seed`)."""
    px, cfg = _item_pixels(img, params)
    n = cfg["sample_pixels"] if sample_pixels is None else sample_pixels
    return vote_colors(px, cfg, k, n, param_seed(params) if seed is None else seed)


def named_colors(img: Image.Image, max_colors: int = 2, params: dict[str, Any] | None = None,
                 seed: int | None = None) -> list[tuple[str, float]]:
    """Up to ``max_colors`` ``(name, share)`` of the item, largest first; colours after the first are kept only
    when their share reaches ``encoders.color.second_colour_share``. ``seed`` not given: the run's."""
    cfg = color_settings(params)
    seed = param_seed(params) if seed is None else seed
    found = vote_colors(*_item_pixels(img, params), len(COLOR_NAMES), cfg["sample_pixels"], seed)
    top = [(found[0][0], found[0][1])]
    top += [(n, share) for n, share, _ in found[1:] if share >= cfg["second_colour_share"]]
    return top[:max(1, max_colors)]


def vote_colors(px: np.ndarray, cfg: dict[str, Any], k: int, sample_pixels: int,
              seed: int) -> list[tuple[str, float, tuple[int, int, int]]]:
    """Per-pixel votes of RGB pixels (n, 3) -> [(name, share, mean rgb)], largest share first, top ``k``.
    ``cfg``: the naming settings (:func:`naming_settings`)."""
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
    return color_space.per_distinct_row(lambda rows: _pixel_names_rows(rows, cfg), lab)


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


def dominant_color_name(img: Image.Image, k: int = 3, seed: int | None = None) -> str:
    """The single most prominent named colour of the item (background ignored); ``seed`` not given: the run's."""
    return dominant_colors(img, k=k, seed=seed)[0][0]
