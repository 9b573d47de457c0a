"""The ``encoders.color`` settings of the colour stages (segmentation, naming, features), read from params.yaml.

The naming settings and their types (values: params.yaml, tuned on a seeded 1,500-photo subsample of the tuning half
of the fashion sample: ``python -m bench.colour_naming --half tune --sample 1500``):
background_tolerance: Lab distance to a border colour under which a pixel is background-coloured;
background_gap_closing: the border flood fill does not pass through gaps narrower than this (pixels);
edge_erosion: foreground pixels peeled off its edge (anti-aliased mixtures of item and background);
chroma_gain / chroma_cap: photo chroma -> survey-swatch chroma (fabric photos are duller than screen swatches),
boosted at most up to the cap; black_point / white_point: photo L* mapped to the survey's 0 and 100;
achromatic_chroma: scaled chroma under which a pixel is black, grey or white by lightness (black_lightness,
white_lightness); second_colour_share: named_colors reports a second colour from this share; skin_max_share:
skin-like pixels are left out unless they are more of the item than this.
"""
from __future__ import annotations

from typing import Any

NAMING_KEYS: dict[str, type] = {
    "background_tolerance": float, "background_gap_closing": int, "edge_erosion": int, "chroma_gain": float,
    "chroma_cap": float, "black_point": float, "white_point": float, "achromatic_chroma": float,
    "black_lightness": float, "white_lightness": float, "second_colour_share": float, "skin_max_share": float,
}
# CIE LCh ranges of skin tones (a model wearing the item): hue angle (degrees), chroma, lightness
SKIN_KEYS: tuple[str, ...] = ("skin_hue", "skin_chroma", "skin_lightness")


class ColorSettings(dict):
    """Settings :func:`color_settings` already resolved: passed back in, they are returned as they are (the colour
    stages call it once per photo and stage; resolving reads params.yaml's section and merges it, ~0.3 ms). Read-only,
    since one object is shared by every photo: derive a changed copy with ``ColorSettings({**cfg, key: value})``."""

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("ColorSettings are shared and read-only; build a changed copy instead")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _read_only  # type: ignore[assignment]

    def __reduce__(self) -> tuple[type, tuple[dict[str, Any]]]:   # to worker processes: rebuilt from a plain dict
        return ColorSettings, (dict(self),)


def color_settings(params: dict[str, Any] | None) -> dict[str, Any]:
    """``encoders.color`` settings (``params`` may be the full params dict or that section) over params.yaml's:
    histogram_bins, sample_pixels, texture_weight, share_weight (of the colour-share block of
    :func:`~modules.encoders.color.color_features_and_name`), and the naming settings of
    :data:`NAMING_KEYS` and :data:`SKIN_KEYS`."""
    from modules.settings import merge_section

    if isinstance(params, ColorSettings):
        return params
    cfg = dict(params or {})
    if "encoders" in cfg:
        cfg = dict(cfg["encoders"].get("color", {}))
    c = merge_section("encoders.color", cfg)
    return ColorSettings({
        "histogram_bins": tuple(int(b) for b in c["histogram_bins"]),
        "sample_pixels": int(c["sample_pixels"]),
        "texture_weight": float(c["texture_weight"]),
        "share_weight": float(c["share_weight"]),
        **{key: kind(c[key]) for key, kind in NAMING_KEYS.items()},
        **{key: tuple(float(v) for v in c[key]) for key in SKIN_KEYS},
    })
