"""Zero-shot product attributes from an image: prompt embeddings in the image encoder's aligned text space.

Each candidate label ``x`` becomes the prompt "a photo of a {x} product"; prompts are embedded with the text
encoder that shares the image space (CLIP's own text encoder, or SBERT for the LiT tower aligned to it) and
ranked by cosine with the image embedding. The model-free named dominant colour is reported alongside. Colour
labels are the 16 basic terms of ``COLOR_TABLE`` (prototypes from the XKCD colour survey).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from modules.search.query import DEFAULT_SYNONYMS

# Candidate labels (general English, not the synthetic generator's lists): the canonical pattern names of the query
# parser's pattern vocabulary, and common retail usage / occasion terms.
DEFAULT_PATTERNS = tuple(dict.fromkeys(DEFAULT_SYNONYMS["pattern"].values()))
DEFAULT_STYLES = ("casual", "formal", "sports", "smart casual", "party", "ethnic", "travel", "home", "business",
                  "beachwear")
PROMPT = "a photo of a {} product"


def _softmax(x: np.ndarray, temperature: float) -> np.ndarray:
    z = (x - x.max()) / temperature
    e = np.exp(z)
    return e / e.sum()


def _encoders(engine_or_encoders: Any) -> tuple[Any, Any]:
    if isinstance(engine_or_encoders, Mapping):
        return engine_or_encoders["text_encoder"], engine_or_encoders["image_encoder"]
    if isinstance(engine_or_encoders, (tuple, list)):
        return engine_or_encoders[0], engine_or_encoders[1]
    return engine_or_encoders.text_encoder, engine_or_encoders.image_encoder


def zero_shot_attributes(engine_or_encoders: Any, img: Image.Image, colors: Sequence[str] | None = None,
                         patterns: Sequence[str] = DEFAULT_PATTERNS, styles: Sequence[str] = DEFAULT_STYLES,
                         temperature: float = 0.05) -> dict[str, Any]:
    """``{"color": {...}, "pattern": {...}, "style": {...}, "dominant_color": str}``; each attribute is
    ``{"label": best, "score": p_best, "scores": {label: p}}`` (softmax of cosines / ``temperature``).

    ``engine_or_encoders``: a ``SearchEngine``, a ``(text_encoder, image_encoder)`` pair or a mapping with those keys.
    """
    from modules.encoders.color_naming import COLOR_TABLE, dominant_color_name

    if not isinstance(img, Image.Image):
        raise ValueError(f"image must be a PIL.Image, got {type(img).__name__}")
    text_encoder, image_encoder = _encoders(engine_or_encoders)
    if image_encoder is None:
        raise ValueError("zero-shot attributes need an image encoder")
    img = img.convert("RGB")
    img_vec = np.asarray(image_encoder.encode_images([img]), dtype=np.float32)[0]
    img_vec = img_vec / max(float(np.linalg.norm(img_vec)), 1e-12)
    embed = image_encoder.encode_texts if hasattr(image_encoder, "encode_texts") else text_encoder.encode
    out: dict[str, Any] = {}
    for name, labels in (("color", list(colors or COLOR_TABLE)), ("pattern", list(patterns)),
                         ("style", list(styles))):
        prompts = np.asarray(embed([PROMPT.format(x) for x in labels]), dtype=np.float32)
        prompts /= np.maximum(np.linalg.norm(prompts, axis=1, keepdims=True), 1e-12)
        if prompts.shape[1] != img_vec.shape[0]:
            raise ValueError(f"text space dim {prompts.shape[1]} != image space dim {img_vec.shape[0]}")
        probs = _softmax(prompts @ img_vec, temperature)
        best = int(np.argmax(probs))
        out[name] = {"label": labels[best], "score": float(probs[best]),
                     "scores": {lab: float(p) for lab, p in zip(labels, probs, strict=True)}}
    out["dominant_color"] = dominant_color_name(img)
    return out
