"""The ``ImageEncoder`` protocol shared by every image encoder, and the factory that picks one from params."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from modules.config import param_seed

IMAGE_ENCODER_KINDS = ("backbone", "tower", "clip", "color")


@runtime_checkable
class ImageEncoder(Protocol):
    """``encode_images`` returns ``(n, dim)`` float32 rows with unit L2 norm."""

    name: str
    dim: int

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray: ...


def make_image_encoder(
    params: dict[str, Any], tower_dir: str | Path | None = None, kind: str | None = None
) -> ImageEncoder:
    """Build the image encoder named by ``kind`` or ``params["encoders"]["image"]["kind"]``.

    - ``backbone``: the frozen backbone + LiT text head (:class:`~modules.encoders.lit.LitEncoder`) saved in
      ``tower_dir`` (required; trained by EmbeddingGen);
    - ``tower``: a trained :class:`~modules.encoders.tower.ImageTower` loaded from ``tower_dir`` (required);
    - ``clip``: :class:`~modules.encoders.clip.ClipEncoder` from ``params["encoders"]["image"]["clip_model"]``
      (a local directory or a hub id in the local cache);
    - ``color``: the model-free :class:`~modules.encoders.color.ColorEncoder`.
    """
    enc_params = params.get("encoders", {})
    kind = kind or enc_params.get("image", {}).get("kind", "backbone")
    if kind == "backbone":
        if tower_dir is None:
            raise ValueError("image encoder 'backbone' needs tower_dir (a trained LiT head, e.g. "
                             "<bundle>/search/image_tower)")
        from modules.encoders.lit import LitEncoder

        return LitEncoder.load(tower_dir)
    if kind == "tower":
        if tower_dir is None:
            raise ValueError("image encoder 'tower' needs tower_dir (a trained tower, e.g. <bundle>/search/image_tower)")
        from modules.encoders.tower import ImageTower

        return ImageTower.load(tower_dir)
    if kind == "clip":
        from modules.encoders.clip import ClipEncoder

        return ClipEncoder(str(enc_params.get("image", {}).get("clip_model", "")))
    if kind == "color":
        from modules.encoders.color import ColorEncoder

        return ColorEncoder(params, seed=param_seed(params))
    raise ValueError(f"unknown image encoder kind {kind!r}; choose one of {', '.join(IMAGE_ENCODER_KINDS)}")
