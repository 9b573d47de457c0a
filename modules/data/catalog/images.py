"""Procedural product photos and "street photos" for the synthetic catalog.

Each category has a silhouette made of polygons in unit coordinates (0..1, y down). An image is drawn by
posing the silhouette (flip, rotation, scale, shift), rasterising each part as a 2x-supersampled mask (soft
edges), filling the body with the item colour and pattern, and compositing over a background with a lighting
gradient. Street photos reuse the same item but with a busy, darker background, a colour cast, stronger
rotation, a random crop and sensor noise: the query-side distribution shift.

Everything is a pure function of (category, colour, pattern, rng), so output is deterministic per item.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from modules.data.catalog.vocab import CATEGORIES, COLORS

Part = tuple[str, np.ndarray]  # (kind, points (n, 2) in unit coords); kind in PART_KINDS
PART_KINDS = ("body", "body_line", "light", "dark", "metal", "detail")
_ACCENT_RGB = {"light": (238, 236, 230), "dark": (45, 45, 48), "metal": (170, 172, 178)}
_SUPERSAMPLE = 2


def _pts(*xy: float) -> np.ndarray:
    return np.asarray(xy, dtype=np.float64).reshape(-1, 2)


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return _pts(x0, y0, x1, y0, x1, y1, x0, y1)


def _ellipse(cx: float, cy: float, rx: float, ry: float, a0: float = 0.0, a1: float = 2 * math.pi,
             n: int = 36) -> np.ndarray:
    t = np.linspace(a0, a1, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


# --- silhouettes ------------------------------------------------------------------------------------------------------
def _shoe() -> list[Part]:
    upper = _pts(0.10, 0.64, 0.12, 0.46, 0.28, 0.42, 0.42, 0.30, 0.58, 0.30, 0.62, 0.42, 0.80, 0.50, 0.92, 0.57,
                 0.92, 0.64)
    laces = _pts(0.44, 0.36, 0.52, 0.44, 0.48, 0.34, 0.56, 0.42, 0.52, 0.32, 0.60, 0.40)
    return [("body", upper), ("light", _rect(0.08, 0.63, 0.94, 0.72)), ("detail", laces)]


def _boot() -> list[Part]:
    shaft = _pts(0.28, 0.14, 0.56, 0.14, 0.58, 0.54, 0.80, 0.60, 0.88, 0.66, 0.88, 0.74, 0.26, 0.74)
    return [("body", shaft), ("dark", _rect(0.24, 0.73, 0.90, 0.81)), ("detail", _pts(0.56, 0.18, 0.57, 0.52))]


def _sandal() -> list[Part]:
    sole = _ellipse(0.5, 0.70, 0.40, 0.085)
    straps = [_pts(0.22, 0.70, 0.30, 0.40, 0.40, 0.40, 0.34, 0.70), _pts(0.44, 0.70, 0.50, 0.38, 0.60, 0.38,
                                                                          0.56, 0.70),
              _pts(0.64, 0.70, 0.70, 0.44, 0.80, 0.46, 0.76, 0.70), _rect(0.26, 0.38, 0.74, 0.46)]
    return [("dark", sole)] + [("body", s) for s in straps]


def _backpack() -> list[Part]:
    body = np.concatenate([_ellipse(0.5, 0.32, 0.25, 0.14, math.pi, 2 * math.pi), _pts(0.75, 0.86, 0.25, 0.86)])
    handle = _ellipse(0.5, 0.19, 0.08, 0.07, math.pi, 2 * math.pi, 16)
    return [("body", body), ("body_line", handle), ("detail", _rect(0.33, 0.56, 0.67, 0.80)),
            ("detail", _pts(0.33, 0.62, 0.67, 0.62))]


def _handbag() -> list[Part]:
    body = _pts(0.18, 0.42, 0.82, 0.42, 0.90, 0.84, 0.10, 0.84)
    handle = _ellipse(0.5, 0.42, 0.22, 0.22, math.pi, 2 * math.pi, 24)
    return [("body", body), ("body_line", handle), ("metal", _rect(0.46, 0.48, 0.54, 0.54))]


def _dress() -> list[Part]:
    body = _pts(0.40, 0.12, 0.44, 0.12, 0.46, 0.20, 0.54, 0.20, 0.56, 0.12, 0.60, 0.12, 0.63, 0.30, 0.58, 0.42,
                0.82, 0.90, 0.18, 0.90, 0.42, 0.42, 0.37, 0.30)
    return [("body", body), ("detail", _pts(0.42, 0.42, 0.58, 0.42))]


def _shirt() -> list[Part]:
    body = _pts(0.32, 0.15, 0.45, 0.12, 0.55, 0.12, 0.68, 0.15, 0.90, 0.58, 0.81, 0.63, 0.70, 0.40, 0.70, 0.88,
                0.30, 0.88, 0.30, 0.40, 0.19, 0.63, 0.10, 0.58)
    collar = _pts(0.42, 0.12, 0.50, 0.22, 0.58, 0.12, 0.55, 0.10, 0.45, 0.10)
    return [("body", body), ("light", collar), ("detail", _pts(0.50, 0.22, 0.50, 0.88))]


def _tshirt() -> list[Part]:
    body = _pts(0.32, 0.18, 0.44, 0.15, 0.56, 0.15, 0.68, 0.18, 0.88, 0.32, 0.80, 0.45, 0.70, 0.38, 0.70, 0.85,
                0.30, 0.85, 0.30, 0.38, 0.20, 0.45, 0.12, 0.32)
    return [("body", body), ("detail", _ellipse(0.5, 0.15, 0.07, 0.05, 0, math.pi, 12))]


def _jacket() -> list[Part]:
    body = _pts(0.30, 0.14, 0.44, 0.10, 0.56, 0.10, 0.70, 0.14, 0.92, 0.66, 0.82, 0.70, 0.72, 0.42, 0.73, 0.88,
                0.27, 0.88, 0.28, 0.42, 0.18, 0.70, 0.08, 0.66)
    return [("body", body), ("metal", _rect(0.49, 0.14, 0.51, 0.88)), ("detail", _pts(0.40, 0.12, 0.50, 0.30, 0.60,
                                                                                        0.12))]


def _jeans() -> list[Part]:
    body = _pts(0.30, 0.12, 0.70, 0.12, 0.75, 0.90, 0.56, 0.90, 0.50, 0.40, 0.44, 0.90, 0.25, 0.90)
    return [("body", body), ("detail", _pts(0.30, 0.18, 0.70, 0.18)), ("detail", _pts(0.50, 0.18, 0.50, 0.38))]


def _lamp() -> list[Part]:
    shade = _pts(0.30, 0.12, 0.70, 0.12, 0.82, 0.48, 0.18, 0.48)
    return [("body", shade), ("metal", _rect(0.47, 0.48, 0.53, 0.80)), ("metal", _ellipse(0.5, 0.83, 0.18, 0.05))]


def _watch() -> list[Part]:
    return [("body", _rect(0.40, 0.04, 0.60, 0.96)), ("body", _ellipse(0.5, 0.5, 0.21, 0.21)),
            ("light", _ellipse(0.5, 0.5, 0.16, 0.16)), ("detail", _pts(0.5, 0.5, 0.5, 0.38)),
            ("detail", _pts(0.5, 0.5, 0.59, 0.55))]


SHAPES: dict[str, Callable[[], list[Part]]] = {
    "shoe": _shoe, "boot": _boot, "sandal": _sandal, "backpack": _backpack, "handbag": _handbag, "dress": _dress,
    "shirt": _shirt, "tshirt": _tshirt, "jacket": _jacket, "jeans": _jeans, "lamp": _lamp, "watch": _watch,
}
_SHAPE_CACHE: dict[str, list[Part]] = {}


def silhouette(category: str) -> list[Part]:
    """The parts of a category's silhouette (cached; do not mutate)."""
    shape = CATEGORIES[category].shape
    if shape not in _SHAPE_CACHE:
        _SHAPE_CACHE[shape] = SHAPES[shape]()
    return _SHAPE_CACHE[shape]


# --- pattern textures -------------------------------------------------------------------------------------------------
def pattern_mask(pattern: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Float mask (size, size) in [0, 1] where 1 = secondary colour. Coverage stays under ~35 % so the item
    colour remains dominant."""
    if pattern == "solid":
        return np.zeros((size, size), dtype=np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    theta = rng.uniform(-0.4, 0.4)
    u = xx * math.cos(theta) + yy * math.sin(theta)
    v = -xx * math.sin(theta) + yy * math.cos(theta)
    period = rng.uniform(0.07, 0.13)
    if pattern == "striped":
        mask = ((u / period) % 1.0) < rng.uniform(0.25, 0.35)
    elif pattern == "checked":
        a = ((u / period) % 1.0) < 0.18
        b = ((v / period) % 1.0) < 0.18
        return (a.astype(np.float32) + b.astype(np.float32)) * 0.5  # crossings darker: tartan-like
    elif pattern == "dotted":
        du = (u / period) % 1.0 - 0.5
        dv = (v / period) % 1.0 - 0.5
        mask = du * du + dv * dv < rng.uniform(0.05, 0.09)
    elif pattern == "floral":
        cell = period * 1.6
        cu = (u / cell) % 1.0 - 0.5
        cv = (v / cell) % 1.0 - 0.5
        mask = np.zeros_like(cu, dtype=bool)
        for k in range(5):  # five petals around the cell centre
            ang = 2 * math.pi * k / 5
            pu, pv = 0.2 * math.cos(ang), 0.2 * math.sin(ang)
            mask |= (cu - pu) ** 2 + (cv - pv) ** 2 < 0.012
        mask |= cu * cu + cv * cv < 0.006
    elif pattern == "geometric":
        zig = np.abs(((u / period) % 2.0) - 1.0)  # triangle wave
        mask = np.abs(((v / period) + zig) % 1.0) < 0.3
    else:
        raise ValueError(f"unknown pattern {pattern!r}")
    return mask.astype(np.float32)


def _secondary_color(rgb: tuple[int, int, int], pattern: str, rng: np.random.Generator) -> np.ndarray:
    lum = (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) / 255.0
    if pattern == "checked":  # a darker/lighter shade of the same colour keeps the hue dominant
        factor = 0.55 if lum > 0.35 else 1.9
        return np.clip(np.asarray(rgb, dtype=np.float32) * factor + (0 if lum > 0.35 else 30), 0, 255)
    light = np.array([238, 236, 228], dtype=np.float32)
    dark = np.array([32, 32, 36], dtype=np.float32)
    base = light if lum < 0.55 else dark
    return base + rng.uniform(-8, 8, size=3).astype(np.float32)


# --- rendering --------------------------------------------------------------------------------------------------------
def _pose(points: np.ndarray, angle: float, scale: float, shift: tuple[float, float], flip: bool) -> np.ndarray:
    p = points.copy()
    if flip:
        p[:, 0] = 1.0 - p[:, 0]
    p -= 0.5
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    p = (p @ rot.T) * scale + 0.5
    p[:, 0] += shift[0]
    p[:, 1] += shift[1]
    return p


def _mask(kind: str, points: np.ndarray, size: int, line_width: float) -> np.ndarray:
    big = size * _SUPERSAMPLE
    img = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(img)
    xy = [tuple(pt) for pt in (points * big).tolist()]
    if kind in ("body_line", "detail"):
        draw.line(xy, fill=255, width=max(1, int(round(line_width * big))), joint="curve")
    else:
        draw.polygon(xy, fill=255)
    return np.asarray(img.resize((size, size), Image.BOX), dtype=np.float32) / 255.0


def _studio_background(size: int, rng: np.random.Generator) -> np.ndarray:
    base = rng.uniform(228, 250)
    tint = rng.uniform(-6, 6, size=3)
    yy = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    grad = rng.uniform(-12, 4)
    return np.clip(base + tint + grad * yy, 0, 255).astype(np.float32) * np.ones((1, size, 1), np.float32)


def _street_background(size: int, rng: np.random.Generator) -> np.ndarray:
    """Darker, cluttered scene: wall/pavement blocks, windows, signs, posts."""
    bg = Image.new("RGB", (size, size), tuple(int(v) for v in rng.uniform(50, 130, size=3)))
    draw = ImageDraw.Draw(bg)
    horizon = int(size * rng.uniform(0.55, 0.8))
    draw.rectangle([0, horizon, size, size], fill=tuple(int(v) for v in rng.uniform(40, 110, size=3)))
    for _ in range(int(rng.integers(8, 18))):
        x0, y0 = rng.uniform(-0.1, 1.0, size=2) * size
        w, h = rng.uniform(0.05, 0.35, size=2) * size
        fill = tuple(int(v) for v in rng.uniform(20, 200, size=3))
        draw.rectangle([x0, y0, x0 + w, y0 + h], fill=fill)
    for _ in range(int(rng.integers(1, 4))):
        x = rng.uniform(0, size)
        draw.line([(x, 0), (x + rng.uniform(-8, 8), size)], fill=tuple(int(v) for v in rng.uniform(10, 90, 3)),
                  width=int(rng.integers(2, 6)))
    bg = bg.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.8, 2.0))))  # depth of field
    return np.asarray(bg, dtype=np.float32)


def _light_and_finish(img: np.ndarray, size: int, street: bool, rng: np.random.Generator) -> Image.Image:
    """A rendered (size, size, 3) float photo -> the final RGB image: a brightness gradient in a random direction;
    street photos also get a colour cast, dimming, noise and a random crop resized back."""
    # lighting: a linear brightness gradient in a random direction
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    phi = rng.uniform(0, 2 * math.pi)
    strength = rng.uniform(0.25, 0.45) if street else rng.uniform(0.08, 0.2)
    light = 1.0 + strength * (xx * math.cos(phi) + yy * math.sin(phi))
    img = img * light[..., None]
    if street:
        cast = rng.uniform(0.85, 1.12, size=3).astype(np.float32)  # warm/cool cast
        img = img * cast * rng.uniform(0.65, 0.95)
        img = img + rng.normal(0.0, 5.0, size=img.shape).astype(np.float32)

    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    if street:  # random crop, resized back
        frac = rng.uniform(0.72, 0.92)
        w = int(size * frac)
        x0 = int(rng.integers(0, size - w + 1))
        y0 = int(rng.integers(0, size - w + 1))
        out = out.crop((x0, y0, x0 + w, y0 + w)).resize((size, size), Image.BILINEAR)
    return out


def render_item(category: str, color: str, pattern: str, rng: np.random.Generator, size: int = 128,
                street: bool = False) -> Image.Image:
    """Draw one product photo (or, with ``street=True``, a street photo of the same product)."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}")
    if color not in COLORS:
        raise ValueError(f"unknown colour {color!r}")
    if size < 32:
        raise ValueError(f"image size must be >= 32, got {size}")

    flip = bool(rng.random() < 0.5)
    if street:
        angle = math.radians(rng.uniform(-30, 30))
        scale = rng.uniform(0.6, 0.95)
        shift = (rng.uniform(-0.12, 0.12), rng.uniform(-0.12, 0.12))
    else:
        angle = math.radians(rng.uniform(-12, 12))
        scale = rng.uniform(0.8, 1.0)
        shift = (rng.uniform(-0.04, 0.04), rng.uniform(-0.04, 0.04))

    rgb = COLORS[color]
    body_rgb = np.clip(np.asarray(rgb, dtype=np.float32) + rng.uniform(-8, 8, size=3), 0, 255)
    sec = _secondary_color(rgb, pattern, rng)
    pmask = pattern_mask(pattern, size, rng)[..., None]
    texture = body_rgb * (1.0 - pmask) + sec * pmask  # (size, size, 3)
    line_w = rng.uniform(0.025, 0.04) * scale

    img = _street_background(size, rng) if street else _studio_background(size, rng)
    parts = silhouette(category)
    masks = [(kind, _mask(kind, _pose(pts, angle, scale, shift, flip), size, line_w)) for kind, pts in parts]

    # soft contact shadow (studio only): the body mask shifted down-right darkens the background
    if not street:
        body_all = np.clip(sum(m for k, m in masks if k in ("body", "body_line")), 0, 1)
        shadow = np.roll(np.roll(body_all, 3, axis=0), 2, axis=1)[..., None]
        img = img * (1.0 - 0.18 * shadow)

    detail_rgb = body_rgb * 0.55
    for kind, m in masks:
        a = m[..., None]
        if kind in ("body", "body_line"):
            fill = texture
        elif kind == "detail":
            fill = detail_rgb
        else:
            fill = np.asarray(_ACCENT_RGB[kind], dtype=np.float32)
        img = img * (1.0 - a) + fill * a

    return _light_and_finish(img, size, street, rng)
