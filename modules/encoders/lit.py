"""LiT ("Locked-image Tuning", Zhai et al. 2022) over a frozen backbone: the image side is locked, the text side learns.

Image side (never trained): backbone features (:mod:`modules.encoders.backbone`) -> L2 -> a PCA fitted once on the
catalog's own photos (unsupervised; it only shrinks the index) -> L2. These are the catalog's image vectors.

Text side (trained): a small MLP head maps the frozen MiniLM text embedding of an item (its title, description and
attributes) into that image space, with the symmetric in-batch contrastive loss of CLIP/LiT on the catalog's own
(text, photo) pairs. The image features are computed once (EmbeddingGen caches them), so no photo is decoded per
epoch; training early-stops on a held-out slice and keeps the best epoch.

A text query then searches the photos: MiniLM(query) -> head -> nearest image vectors ("white sneakers" finds white
sneakers whose titles never say white). ``LitEncoder`` implements the ``ImageEncoder`` protocol plus
``encode_texts`` and ``text_to_image_space`` (the fast path when the MiniLM query vector is already computed).
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from modules.settings import load_section

log = logging.getLogger(__name__)

CONFIG_NAME = "lit_config.json"
WEIGHTS_NAME = "lit_weights.npz"
KIND = "backbone"


def l2(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def lit_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``encoders.backbone`` and ``encoders.lit`` of the full params dict (params.yaml holds every default)."""
    enc = dict(params.get("encoders", {}))
    return {"backbone": dict(enc.get("backbone", {})), "lit": dict(enc.get("lit", {})),
            "text": dict(enc.get("text", {}))}


# ------------------------------------------------------------------------------------------------ locked image side
def fit_pca(feats: np.ndarray, dim: int | None, max_rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, components (k, d)) of L2-normalised ``feats``; ``dim`` None or >= d keeps every axis (identity)."""
    x = l2(feats)
    d = x.shape[1]
    if not dim or dim >= d:
        return np.zeros(d, np.float32), np.eye(d, dtype=np.float32)
    rng = np.random.default_rng(seed)
    if len(x) > max_rows:
        x = x[rng.choice(len(x), size=max_rows, replace=False)]
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    k = min(int(dim), vt.shape[0])
    return mean.astype(np.float32), vt[:k].astype(np.float32)


def project_images(feats: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """Raw backbone features -> the locked image space (unit rows)."""
    return l2((l2(feats) - mean) @ components.T)


# ------------------------------------------------------------------------------------------------ trained text side
def _head_forward(weights: Mapping[str, np.ndarray], text_vecs: np.ndarray) -> np.ndarray:
    h = np.maximum(np.asarray(text_vecs, np.float32) @ weights["w1"] + weights["b1"], 0.0)
    return l2(h @ weights["w2"] + weights["b2"])


def _split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction)) if n >= 20 else 0
    return order[n_val:], order[:n_val]


def train_text_head(text_emb: np.ndarray, image_vecs: np.ndarray, cfg: Mapping[str, Any], seed: int,
                    progress: bool = False) -> tuple[dict[str, np.ndarray], list[dict[str, float]]]:
    """Fit the text head on (text, image) pairs with in-batch symmetric InfoNCE; early-stop on a held-out slice.

    Returns the best epoch's weights (numpy) and the per-epoch history (train/val loss, val in-batch top-1)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    train, val = _split(len(text_emb), float(cfg["val_fraction"]), seed)
    t_all = tf.constant(np.asarray(text_emb, np.float32))
    i_all = tf.constant(l2(image_vecs))
    d_in, d_out, hidden = t_all.shape[1], i_all.shape[1], int(cfg["hidden_dim"])
    init = tf.keras.initializers.GlorotUniform(seed=seed)
    w = {"w1": tf.Variable(init((d_in, hidden))), "b1": tf.Variable(tf.zeros(hidden)),
         "w2": tf.Variable(init((hidden, d_out))), "b2": tf.Variable(tf.zeros(d_out))}
    opt = tf.keras.optimizers.Adam(float(cfg["learning_rate"]))
    temp, bs = float(cfg["temperature"]), int(cfg["batch_size"])

    def loss_fn(idx: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        t = tf.gather(t_all, idx)
        q = tf.math.l2_normalize(tf.nn.relu(t @ w["w1"] + w["b1"]) @ w["w2"] + w["b2"], axis=-1)
        logits = q @ tf.transpose(tf.gather(i_all, idx)) / temp
        labels = tf.range(tf.shape(idx)[0])
        loss = 0.5 * (tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
                      + tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, tf.transpose(logits))))
        acc = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), labels), tf.float32))
        return loss, acc

    @tf.function(reduce_retracing=True)
    def step(idx: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss, _ = loss_fn(idx)
        grads = tape.gradient(loss, list(w.values()))
        opt.apply_gradients(zip(grads, list(w.values()), strict=True))
        return loss

    evaluate = tf.function(loss_fn, reduce_retracing=True)
    rng = np.random.default_rng(seed)
    history: list[dict[str, float]] = []
    best, best_loss, stale = None, np.inf, 0
    for epoch in range(int(cfg["max_epochs"])):
        t0 = time.perf_counter()
        order = rng.permutation(train)
        losses = [float(step(tf.constant(order[s:s + bs]))) for s in range(0, len(order) - 1, bs)
                  if len(order[s:s + bs]) >= 2]
        vals = [evaluate(tf.constant(val[s:s + bs])) for s in range(0, len(val) - 1, bs) if len(val[s:s + bs]) >= 2]
        val_loss = float(np.mean([float(v[0]) for v in vals])) if vals else float(np.mean(losses))
        val_acc = float(np.mean([float(v[1]) for v in vals])) if vals else float("nan")
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "val_loss": val_loss,
                        "val_in_batch_top1": val_acc, "seconds": round(time.perf_counter() - t0, 2)})
        if progress:
            log.info("LiT epoch %d: loss %.4f, val loss %.4f, val top-1 %.3f", epoch + 1, history[-1]["loss"],
                     val_loss, val_acc)
        if val_loss < best_loss - float(cfg["min_delta"]):
            best_loss, stale = val_loss, 0
            best = {k: v.numpy().copy() for k, v in w.items()}
        else:
            stale += 1
            if stale >= int(cfg["patience"]):
                break
    return best if best is not None else {k: v.numpy() for k, v in w.items()}, history


# ------------------------------------------------------------------------------------------------ the encoder
class LitEncoder:
    """Frozen backbone + PCA on the image side, the trained text head on the text side (``ImageEncoder``)."""

    name = "backbone-lit"

    def __init__(self, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.config = dict(config)
        self.mean = np.asarray(arrays["pca_mean"], np.float32)
        self.components = np.asarray(arrays["pca_components"], np.float32)
        self.head = {k: np.asarray(arrays[k], np.float32) for k in ("w1", "b1", "w2", "b2")}
        self.dim = int(self.components.shape[0])
        self._backbone: Any = None
        self._text_encoder: Any = None

    @property
    def backbone(self) -> Any:
        if self._backbone is None:
            from modules.encoders.backbone import Backbone

            threads = self.config["threads"] if "threads" in self.config else load_section("encoders.backbone").threads
            self._backbone = Backbone(self.config["backbone"]["name"], threads=int(threads))
            want = self.config["backbone"].get("sha256")
            if want and want != self._backbone.sha256:
                raise ValueError(f"backbone file {self._backbone.path} differs from the one this encoder was "
                                 f"trained with (sha256 {self._backbone.sha256[:12]} != {want[:12]})")
        return self._backbone

    def image_vectors(self, feats: np.ndarray) -> np.ndarray:
        return project_images(feats, self.mean, self.components)

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not len(images):
            return np.zeros((0, self.dim), np.float32)
        return self.image_vectors(self.backbone.features(images))

    def text_to_image_space(self, text_vecs: np.ndarray) -> np.ndarray:
        """MiniLM text vectors (n, 384) or one (384,) -> the image space (unit rows)."""
        vecs = np.asarray(text_vecs, np.float32)
        out = _head_forward(self.head, vecs.reshape(-1, vecs.shape[-1]))
        return out[0] if vecs.ndim == 1 else out

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        if self._text_encoder is None:
            from modules.encoders.text import text_encoder_from_params

            self._text_encoder = text_encoder_from_params({"encoders": {"text": self.config["text"]}})
        return self.text_to_image_space(self._text_encoder.encode(list(texts), progress=False))

    # ------------------------------------------------------------------------------------------ train / io
    @classmethod
    def train(cls, text_emb: np.ndarray, backbone_feats: np.ndarray, backbone_info: Mapping[str, Any],
              params: Mapping[str, Any], seed: int, progress: bool = False) -> LitEncoder:
        """PCA on the catalog's backbone features (locked), then the text head on (text, photo) pairs."""
        cfg = lit_params(params)
        bb, lit = cfg["backbone"], cfg["lit"]
        mean, comps = fit_pca(backbone_feats, bb.get("pca_dim"), int(bb["pca_fit_rows"]), seed)
        image_vecs = project_images(backbone_feats, mean, comps)
        rows = np.arange(len(text_emb))
        cap = lit.get("max_train_items")
        if cap and len(rows) > int(cap):
            rows = np.sort(np.random.default_rng(seed).choice(rows, size=int(cap), replace=False))
        t0 = time.perf_counter()
        head, history = train_text_head(np.asarray(text_emb)[rows], image_vecs[rows], lit, seed, progress)
        config = {"kind": KIND, "backbone": dict(backbone_info), "pca_dim": int(comps.shape[0]),
                  "text": cfg["text"], "lit": lit, "threads": load_section("encoders.backbone", bb).threads, "history": history,
                  "train_items": int(len(rows)), "train_seconds": round(time.perf_counter() - t0, 2)}
        return cls(config, {"pca_mean": mean, "pca_components": comps, **head})

    @property
    def history(self) -> list[dict[str, float]]:
        return list(self.config.get("history", []))

    def save(self, directory: str | Path) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        np.savez(d / WEIGHTS_NAME, pca_mean=self.mean, pca_components=self.components, **self.head)
        (d / CONFIG_NAME).write_text(json.dumps(self.config, indent=1))
        return d

    @classmethod
    def load(cls, directory: str | Path) -> LitEncoder:
        d = Path(directory)
        if not (d / CONFIG_NAME).is_file():
            raise FileNotFoundError(f"{d} holds no LiT encoder ({CONFIG_NAME} missing)")
        with np.load(d / WEIGHTS_NAME, allow_pickle=False) as arrays:
            return cls(json.loads((d / CONFIG_NAME).read_text()), dict(arrays))

    @staticmethod
    def is_saved(directory: str | Path) -> bool:
        return (Path(directory) / CONFIG_NAME).is_file()
