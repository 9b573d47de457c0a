"""Backend of ``pixelmatch encode --text ... --image ...``: one JSON line per input.

Each line: ``{"encoder": name, "dim": d, "input": text or path, "vector": [...]}``.
Text always uses the MiniLM :class:`~modules.encoders.text.TextEncoder`. Images use ``image_encoder``:
``color`` (model-free, always available), ``tower`` (needs ``model_dir``: a trained tower, e.g.
``serving_dir/<version>/search/image_tower``) or ``clip`` (needs ``model_dir``: a local CLIP directory).
Errors (bad image path, missing model) raise ``ValueError`` subclasses with a clear message.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modules.data.images import ImageError, load_image
from modules.settings import load_settings

CLI_IMAGE_ENCODERS = ("color", "tower", "clip")


def _line(encoder: str, dim: int, src: str, vector: Any) -> str:
    return json.dumps(
        {"encoder": encoder, "dim": int(dim), "input": src, "vector": [round(float(v), 7) for v in vector]},
        ensure_ascii=False,
    )


def encode_json_lines(
    texts: list[str],
    images: list[str],
    image_encoder: str = "color",
    model_dir: str | None = None,
    params: dict[str, Any] | None = None,
) -> Iterator[str]:
    """Yield one JSON line per text, then one per image (in the order given)."""
    if image_encoder not in CLI_IMAGE_ENCODERS:
        raise ValueError(f"unknown image encoder {image_encoder!r}; choose one of {', '.join(CLI_IMAGE_ENCODERS)}")
    if params is None:
        from modules.config import load_params

        params = load_params()
    max_pixels = load_settings(params).serving.max_image_pixels
    # Load every image first, so a bad path fails before any model is loaded or anything is printed.
    loaded = []
    for path in images:
        try:
            loaded.append(load_image(Path(path), max_pixels=max_pixels))
        except ImageError as e:
            raise ImageError(f"--image {path}: {e}") from e

    if texts:
        from modules.encoders.text import text_encoder_from_params

        text_enc = text_encoder_from_params(params)
        vectors = text_enc.encode(texts)
        for text, vec in zip(texts, vectors, strict=True):
            yield _line(text_enc.name, text_enc.dim, text, vec)

    if images:
        from modules.encoders.base import make_image_encoder

        if image_encoder in ("tower", "clip") and not model_dir:
            raise ValueError(f"--image-encoder {image_encoder} needs --model-dir")
        if image_encoder == "clip":
            params = {**params, "encoders": {**params.get("encoders", {}), "image": {"kind": "clip", "clip_model": model_dir}}}
        encoder = make_image_encoder(params, tower_dir=model_dir, kind=image_encoder)
        vectors = encoder.encode_images(loaded)
        for path, vec in zip(images, vectors, strict=True):
            yield _line(encoder.name, encoder.dim, path, vec)
