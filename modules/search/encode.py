"""Stage 2, encode: query hygiene and the query's vectors in each searched space (text, image, fused)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from modules.search.dense import l2_normalize

if TYPE_CHECKING:
    from modules.search.state import EngineState


def clean_query(query: Any, max_chars: int) -> str:
    """Whitespace-collapsed query, truncated to ``max_chars`` (``retrieval.max_query_chars``); ``ValueError`` when
    empty."""
    if not isinstance(query, str):
        raise ValueError(f"query must be a string, got {type(query).__name__}")
    q = " ".join(query.split())
    if not q:
        raise ValueError("query is empty")
    return q[:max_chars]


def check_top_k(top_k: Any) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    return int(top_k)


def encode_photo(state: EngineState, img: Any) -> np.ndarray:
    """The query photo in the image space (a busy scene cropped to its subject when ``retrieval.photo`` says so)."""
    if not isinstance(img, Image.Image):
        raise ValueError(f"image must be a PIL.Image, got {type(img).__name__}")
    if state.image_encoder is None:
        raise ValueError("this engine has no image encoder; image search is unavailable")
    img = img.convert("RGB")
    cfg = state.hp.get("photo", {})
    if cfg.get("crop_busy_scenes"):  # a shopper's photo: embed the product, not the street around it
        from modules.encoders.color_mask import subject_box

        box = subject_box(img, float(cfg["crop_margin"]), float(cfg["crop_percentile"]))
        img = img.crop(box) if box else img
    return np.asarray(state.image_encoder.encode_images([img]), dtype=np.float32)[0]


def image_space_text(state: EngineState, text: str, text_vec: np.ndarray) -> np.ndarray | None:
    """The text query in the image-embedding space: CLIP's own text encoder, else the SBERT vector (the
    trained tower is aligned to the SBERT space). ``None`` when the image space is not text-aligned (e.g. the
    model-free colour encoder): text queries then skip the image list."""
    enc = state.image_encoder
    if enc is not None and hasattr(enc, "text_to_image_space"):  # LiT head: the MiniLM vector is enough
        return np.asarray(enc.text_to_image_space(text_vec), dtype=np.float32)
    if enc is not None and hasattr(enc, "encode_texts"):
        return np.asarray(enc.encode_texts([text]), dtype=np.float32)[0]
    if state.image_index.dim != text_vec.shape[0]:
        return None
    return text_vec


def text_fused_query(state: EngineState, text: str, q_text: np.ndarray) -> np.ndarray:
    """A text-only query's vector in the fused space (CLIP also speaks for the image half)."""
    img_q = image_space_text(state, text, q_text) if hasattr(state.image_encoder, "encode_texts") else None
    return state.fusion.query_vector(q_text, img_q)


@dataclass
class QueryVectors:
    text: np.ndarray | None      # SBERT query vector (text queries)
    photo: np.ndarray | None     # the photo in the image space (photo queries)
    image: np.ndarray | None     # what the image index is searched with (photo, text in image space, or a blend)
    fused: np.ndarray            # what the fused index is searched with


def encode_query(state: EngineState, text: str | None, retrieval_text: str, img: Image.Image | None,
                 image_weight: float) -> QueryVectors:
    """The query's vectors. A photo + text query blends ``image_weight * photo + (1 - image_weight) * text`` in
    the image space."""
    q_text = np.asarray(state.text_encoder.encode_query(retrieval_text), np.float32) if text else None
    q_photo = encode_photo(state, img) if img is not None else None
    q_img_text = image_space_text(state, retrieval_text, q_text) if q_text is not None else None
    if q_photo is not None and q_img_text is not None:
        q_image = l2_normalize(image_weight * l2_normalize(q_photo).ravel()
                               + (1 - image_weight) * l2_normalize(q_img_text).ravel()).ravel()
    else:
        q_image = q_photo if q_photo is not None else q_img_text  # None: text query, unaligned image space
    fusion = state.fusion
    if q_photo is None and q_text is not None:
        q_fused = fusion.query_vector(q_text, q_img_text if hasattr(state.image_encoder, "encode_texts") else None)
    else:  # a photo (possibly with a text modifier): the image-space query speaks for the image half
        photo_side = q_image if q_image is not None else q_photo
        text_half = q_text if q_text is not None else (
            photo_side if photo_side.shape[0] == fusion.text_dim else np.zeros(fusion.text_dim, np.float32))
        q_fused = fusion.query_vector(text_half, photo_side)
    return QueryVectors(text=q_text, photo=q_photo, image=q_image, fused=q_fused)
