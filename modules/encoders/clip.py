"""CLIP image + text encoder (TensorFlow ``TFCLIPModel``), from a local directory or the local Hugging Face cache.

Optional: PixelMatch's offline default image encoder is the trained :class:`~modules.encoders.tower.ImageTower`.
Set ``encoders.image.kind: clip`` and ``encoders.image.clip_model`` to a directory (or a hub id already in the local
cache) to use CLIP instead. Nothing is downloaded: every load passes ``local_files_only=True``.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from modules.encoders.hf_weights import load_tf_model  # noqa: E402


def resolve_clip_dir(model_dir_or_id: str | Path) -> Path:
    """A local directory as is; a hub id only if it is already in the local Hugging Face cache."""
    if not str(model_dir_or_id).strip():
        raise FileNotFoundError("no CLIP model configured (encoders.image.clip_model is empty)")
    path = Path(model_dir_or_id)
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(str(model_dir_or_id), local_files_only=True))
    except (LocalEntryNotFoundError, ValueError, OSError) as e:
        raise FileNotFoundError(
            f"CLIP model {model_dir_or_id!r} is neither a local directory nor in the local Hugging Face cache "
            "(PixelMatch never downloads at run time)"
        ) from e


class ClipEncoder:
    """Image and text embeddings in CLIP's shared space, both L2-normalised float32 (implements ``ImageEncoder``)."""

    name = "clip"

    def __init__(self, model_dir_or_id: str | Path, batch_size: int = 32) -> None:
        from transformers import AutoTokenizer, CLIPImageProcessor, TFCLIPModel

        self.model_dir = resolve_clip_dir(model_dir_or_id)
        self.model = load_tf_model(TFCLIPModel, self.model_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
        self.image_processor = CLIPImageProcessor.from_pretrained(str(self.model_dir), local_files_only=True)
        self.dim = int(self.model.config.projection_dim)
        self.max_text_len = int(self.model.config.text_config.max_position_embeddings)
        self.batch_size = int(batch_size)

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        for start in range(0, len(images), self.batch_size):
            batch = [im if im.mode == "RGB" else im.convert("RGB") for im in images[start : start + self.batch_size]]
            pixels = self.image_processor(images=batch, return_tensors="np")["pixel_values"]
            feats = self.model.get_image_features(pixel_values=tf.constant(pixels), training=False)
            out[start : start + len(batch)] = tf.math.l2_normalize(feats, axis=1).numpy()
        return out

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("encode_texts() takes a list of strings")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            enc = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_text_len, return_tensors="np")
            feats = self.model.get_text_features(
                input_ids=tf.constant(enc["input_ids"]), attention_mask=tf.constant(enc["attention_mask"]), training=False
            )
            out[start : start + len(batch)] = tf.math.l2_normalize(feats, axis=1).numpy()
        return out
