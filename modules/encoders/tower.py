"""LiT-style image tower: a small CNN trained so that image embeddings land next to FROZEN SBERT item-text embeddings.

Why: most titles do not name the colour, but the pixels show it. Items whose text DOES name colour / pattern /
shape teach the CNN where those visual properties live in the SBERT space, so that afterwards a text query such as
"red dress" retrieves red dresses whose titles never say "red" (text -> image search in one shared 384-d space).

Model: image (input_size^2 x 3, values in [0, 1]) -> 4 strided conv blocks -> global average pooling, concatenated
with the model-free colour features of :mod:`modules.encoders.color` (histogram + texture + dominant colour,
which make colour alignment easy to learn) -> MLP -> linear projection to ``embedding_dim`` -> L2 normalisation.

Loss: symmetric in-batch InfoNCE (CLIP/LiT): for a batch of B (image, text) pairs, logits = img @ text.T / T,
cross-entropy towards the diagonal in both directions. The text side is a fixed matrix, never trained.

Training streams images through ``tf.data`` (one batch of sources decoded at a time), so a list of file paths of any
length works without holding the images in memory. Everything random is derived from ``seed``.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
from PIL import Image  # noqa: E402

from modules.config import param_seed  # noqa: E402
from modules.data.images import ImageError, image_to_array, load_image  # noqa: E402
from modules.encoders.color import color_feature_dim, color_features  # noqa: E402
from modules.encoders.tower_augment import photo_augment  # noqa: E402
from modules.settings import section_dict  # noqa: E402

log = logging.getLogger(__name__)

ImageSource = Image.Image | str | Path
CONFIG_NAME = "tower_config.json"
WEIGHTS_NAME = "tower_weights.h5"


def tower_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """Tower hyperparameters: ``params["encoders"]["tower"]`` (or a bare tower dict) over params.yaml's
    ``encoders.tower`` (the only source of defaults), plus the colour-feature settings from ``params["encoders"]["color"]``. ``augment_street`` (the former name of
    ``augment_photo``) still sets it when ``augment_photo`` is absent."""
    params = dict(params or {})
    enc = params.get("encoders")
    cfg = section_dict("encoders.tower")
    given = dict(enc.get("tower", {})) if isinstance(enc, dict) else params
    cfg.update(given)
    cfg["color"] = dict(enc.get("color", {})) if isinstance(enc, dict) else dict(given.get("color", {}))
    if "augment_street" in given and "augment_photo" not in given:  # the setting's former name
        cfg["augment_photo"] = float(given["augment_street"])
    return cfg


def build_tower_model(cfg: dict[str, Any], color_dim: int) -> keras.Model:
    """The Keras tower: (pixels, colour features) -> L2-normalised embedding."""
    size = int(cfg["input_size"])
    pixels = keras.Input((size, size, 3), name="pixels")
    x = keras.layers.Rescaling(2.0, offset=-1.0)(pixels)  # [0, 1] -> [-1, 1]
    for i, filters in enumerate(cfg["conv_filters"]):
        x = keras.layers.Conv2D(int(filters), 3, strides=2, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.Activation("relu")(x)
        x = keras.layers.Conv2D(int(filters), 3, padding="same", activation="relu", name=f"conv{i}b")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    inputs = [pixels]
    if cfg["use_color_features"]:
        colour = keras.Input((color_dim,), name="color_features")
        inputs.append(colour)
        x = keras.layers.Concatenate()([x, keras.layers.Dense(128, activation="relu", name="color_proj")(colour)])
    x = keras.layers.Dense(int(cfg["hidden_dim"]), activation="relu", name="hidden")(x)
    x = keras.layers.Dense(int(cfg["embedding_dim"]), name="projection")(x)
    out = keras.layers.Lambda(lambda t: tf.math.l2_normalize(t, axis=1), name="l2_normalize")(x)
    return keras.Model(inputs, out, name="image_tower")


def info_nce_loss(img_emb: tf.Tensor, text_emb: tf.Tensor, temperature: float) -> tf.Tensor:
    """Symmetric in-batch softmax loss; both inputs L2-normalised, row i of each is a positive pair."""
    logits = tf.matmul(img_emb, text_emb, transpose_b=True) / temperature
    labels = tf.range(tf.shape(logits)[0])
    loss_i = tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    loss_t = tf.keras.losses.sparse_categorical_crossentropy(labels, tf.transpose(logits), from_logits=True)
    return tf.reduce_mean(loss_i + loss_t) / 2.0


def in_batch_accuracy(img_emb: np.ndarray, text_emb: np.ndarray) -> float:
    """Share of images whose own text is the nearest among the given texts (chance = 1 / n)."""
    sims = np.asarray(img_emb) @ np.asarray(text_emb).T
    return float(np.mean(np.argmax(sims, axis=1) == np.arange(len(sims))))


def _split_items(valid: np.ndarray, cfg: dict[str, Any], val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(held-out, training) item indices: a seeded shuffle of the readable items, the first ``val_fraction`` held out,
    the training part capped at ``max_train_items`` (a seeded subsample bounds the cost at full scale; every item
    is still encoded afterwards)."""
    rng = np.random.default_rng(seed)
    valid = valid[rng.permutation(len(valid))]
    n_val = int(round(len(valid) * val_fraction)) if val_fraction > 0 else 0
    val_idx, train_idx = np.sort(valid[:n_val]), valid[n_val:]
    if cfg.get("max_train_items") and len(train_idx) > int(cfg["max_train_items"]):
        train_idx = train_idx[: int(cfg["max_train_items"])]
        log.info("tower: training on a seeded subsample of %d items", len(train_idx))
    if len(train_idx) < 2:
        raise ValueError("fewer than 2 readable training images")
    return val_idx, train_idx


class ImageTower:
    """Trained LiT-style image encoder (implements ``ImageEncoder``): ``.name == "tower"``, ``.dim``."""

    name = "tower"

    def __init__(self, model: keras.Model, cfg: dict[str, Any], history: list[dict[str, float]] | None = None):
        self.model = model
        self.cfg = cfg
        self.dim = int(cfg["embedding_dim"])
        self.color_dim = color_feature_dim(cfg["color"])
        self.history = history or []

    # ------------------------------------------------------------------ features
    def _load(self, src: ImageSource) -> Image.Image:
        if isinstance(src, Image.Image):
            return src if src.mode == "RGB" else src.convert("RGB")
        return load_image(src, max_pixels=int(self.cfg["max_image_pixels"]))

    def _features(self, images: Sequence[Image.Image], color_feats: np.ndarray | None = None) -> dict[str, np.ndarray]:
        size = int(self.cfg["input_size"])
        feats = {"pixels": np.stack([image_to_array(im, size) for im in images]).astype(np.float32)}
        if self.cfg["use_color_features"]:
            feats["color_features"] = (
                np.asarray(color_feats, dtype=np.float32) if color_feats is not None
                else np.stack([color_features(im, self.cfg["color"]) for im in images])
            )
        return feats

    # ------------------------------------------------------------------ inference
    def encode_images(
        self, images: Sequence[Image.Image], color_feats: np.ndarray | None = None, progress: bool = False
    ) -> np.ndarray:
        """Embed PIL images -> ``(n, dim)`` float32, L2-normalised. ``color_feats``: the images'
        :func:`color_features` rows when already computed (they are then not computed again)."""
        if len(images) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if color_feats is not None and len(color_feats) != len(images):
            raise ValueError(f"{len(color_feats)} colour-feature rows for {len(images)} images")
        starts: Any = range(0, len(images), 256)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="image tower: encoding", unit="batch")
        out = [
            self.model(self._features([self._load(im) for im in images[i : i + 256]],
                                      None if color_feats is None else color_feats[i : i + 256]),
                       training=False).numpy()
            for i in starts
        ]
        return np.concatenate(out).astype(np.float32)

    def encode_paths(
        self, paths: Sequence[str | Path], batch_size: int | None = None, progress: bool = False,
        on_error: str = "raise", color_feats: np.ndarray | None = None,
    ) -> np.ndarray:
        """Embed image files in streamed batches (``batch_size`` not given: ``encoders.tower.batch_size``).
        ``on_error="zero"`` gives unreadable files a zero row (and logs them) instead of raising
        :class:`ImageError`. ``color_feats``: precomputed colour rows."""
        if on_error not in ("raise", "zero"):
            raise ValueError("on_error must be 'raise' or 'zero'")
        batch_size = int(self.cfg["batch_size"]) if batch_size is None else batch_size
        out = np.zeros((len(paths), self.dim), dtype=np.float32)
        starts: Any = range(0, len(paths), max(1, int(batch_size)))
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="image tower", unit="batch")
        for start in starts:
            imgs, rows = [], []
            for i in range(start, min(start + batch_size, len(paths))):
                try:
                    imgs.append(self._load(paths[i]))
                    rows.append(i)
                except ImageError as e:
                    if on_error == "raise":
                        raise ImageError(f"{paths[i]}: {e}") from e
                    log.warning("image tower: skipping %s: %s", paths[i], e)
            if imgs:
                colour = None if color_feats is None else color_feats[rows]
                out[rows] = self.model(self._features(imgs, colour), training=False).numpy()
        return out

    # ------------------------------------------------------------------ training
    @classmethod
    def train(
        cls,
        images: Sequence[ImageSource],
        text_emb: np.ndarray,
        params: dict[str, Any] | None = None,
        seed: int | None = None,
        progress: bool = True,
        color_feats: np.ndarray | None = None,
        val_fraction: float = 0.0,
        images_checked: bool = False,
    ) -> ImageTower:
        """Train a tower aligning ``images[i]`` with the frozen ``text_emb[i]``.

        ``images``: PIL images or file paths (paths are decoded per batch, so the catalogue never sits in memory).
        ``color_feats``: optional precomputed :func:`color_features` rows (saves one decoding pass).
        ``val_fraction``: hold out that share of items and log their in-batch retrieval accuracy per epoch.
        Unreadable files are left out of training (logged). ``images_checked=True`` (with ``color_feats``) skips
        that check: the caller already decoded every source, e.g. in its colour-feature pass. ``seed`` not given:
        the run's (:func:`modules.config.param_seed`).
        """
        seed = param_seed(params) if seed is None else seed
        cfg = tower_params(params)
        text_emb = np.asarray(text_emb, dtype=np.float32)
        if len(images) != len(text_emb):
            raise ValueError(f"{len(images)} images but {len(text_emb)} text embeddings")
        if text_emb.ndim != 2 or text_emb.shape[1] != int(cfg["embedding_dim"]):
            raise ValueError(f"text_emb must be (n, {cfg['embedding_dim']}), got {text_emb.shape}")
        if len(images) < 2:
            raise ValueError("need at least 2 (image, text) pairs for an in-batch softmax")

        keras.utils.set_random_seed(seed)
        color_dim = color_feature_dim(cfg["color"])
        tower = cls(build_tower_model(cfg, color_dim), cfg)
        if images_checked and color_feats is not None:
            valid, colour = np.arange(len(images)), np.asarray(color_feats, dtype=np.float32)
        else:
            valid, colour = tower._prepare_colour(images, color_feats, progress)
        val_idx, train_idx = _split_items(valid, cfg, val_fraction, seed)
        tower._fit(images, text_emb, train_idx, val_idx, colour, seed, progress)
        return tower

    def _fit(self, images: Sequence[ImageSource], text_emb: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray,
             colour: np.ndarray, seed: int, progress: bool) -> None:
        """The epochs: seeded batch order, in-batch InfoNCE steps; the held-out accuracy per epoch when there is a
        hold-out of at least 2 (first 512 items). Appends one record per epoch to ``history``."""
        cfg = self.cfg
        batch = int(min(cfg["batch_size"], len(train_idx)))
        opt = keras.optimizers.Adam(float(cfg["learning_rate"]))
        temperature = float(cfg["temperature"])
        text_t = tf.constant(text_emb)
        model = self.model

        @tf.function(reduce_retracing=True)
        def step(pixels: tf.Tensor, colour_batch: tf.Tensor, idx: tf.Tensor) -> tf.Tensor:
            inputs = {"pixels": pixels}
            if cfg["use_color_features"]:
                inputs["color_features"] = colour_batch
            with tf.GradientTape() as tape:
                emb = model(inputs, training=True)
                loss = info_nce_loss(emb, tf.gather(text_t, idx), temperature)
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return loss

        for epoch in range(int(cfg["epochs"])):
            order = train_idx[np.random.default_rng([seed, epoch]).permutation(len(train_idx))]
            batches = [order[i : i + batch] for i in range(0, len(order), batch)]
            if len(batches) > 1 and len(batches[-1]) < 2:
                batches = batches[:-1]
            losses = []
            it: Any = self._stream(images, batches, seed=seed, epoch=epoch, colour=colour)
            if progress:
                from tqdm.auto import tqdm

                it = tqdm(it, total=len(batches), desc=f"tower epoch {epoch + 1}/{cfg['epochs']}", unit="batch")
            for pixels, colour_batch, idx in it:
                losses.append(float(step(tf.constant(pixels), tf.constant(colour_batch), tf.constant(idx))))
            record = {"epoch": epoch + 1, "loss": float(np.mean(losses))}
            if len(val_idx) >= 2:
                val_emb = self.encode_images([self._load(images[i]) for i in val_idx[:512]], colour[val_idx[:512]])
                record["val_in_batch_acc"] = in_batch_accuracy(val_emb, text_emb[val_idx[:512]])
            self.history.append(record)
            log.info("tower %s", record)

    def _prepare_colour(
        self, images: Sequence[ImageSource], color_feats: np.ndarray | None, progress: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Colour features for every item (computed in one streamed pass unless given) + the readable indices."""
        n = len(images)
        if color_feats is not None:
            color_feats = np.asarray(color_feats, dtype=np.float32)
            if color_feats.shape != (n, self.color_dim):
                raise ValueError(f"color_feats must be ({n}, {self.color_dim}), got {color_feats.shape}")
            if all(isinstance(im, Image.Image) for im in images):
                return np.arange(n), color_feats
        colour = np.zeros((n, self.color_dim), dtype=np.float32) if color_feats is None else color_feats
        valid = []
        it: Any = range(n)
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(it, desc="tower: checking images", unit="img")
        for i in it:
            try:
                img = self._load(images[i])
            except ImageError as e:
                log.warning("tower: leaving out unreadable image %s: %s", images[i], e)
                continue
            if color_feats is None and self.cfg["use_color_features"]:
                colour[i] = color_features(img, self.cfg["color"])
            valid.append(i)
        return np.asarray(valid, dtype=np.int64), colour

    def _stream(
        self, images: Sequence[ImageSource], batches: list[np.ndarray], seed: int, epoch: int, colour: np.ndarray
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Decode one batch at a time in a tf.data pipeline (parallel, ordered, prefetched): (pixels, colour
        features, item indices). With probability ``augment_photo`` an example becomes a :func:`~modules.encoders.tower_augment.photo_augment`
        photo, and its colour features are recomputed from the augmented pixels (what a query photo would give)."""
        size = int(self.cfg["input_size"])
        flip = bool(self.cfg["augment_flip"])
        p_photo = float(self.cfg["augment_photo"])
        use_colour = bool(self.cfg["use_color_features"])

        def load_batch(b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            idx = batches[b]
            out = np.empty((len(idx), size, size, 3), dtype=np.float32)
            feats = colour[idx].astype(np.float32)
            for j, i in enumerate(idx):
                rng = np.random.default_rng([seed, epoch, int(i)])
                arr = image_to_array(self._load(images[int(i)]), size)
                if flip and rng.random() < 0.5:
                    arr = arr[:, ::-1]
                if p_photo > 0 and rng.random() < p_photo:
                    arr = photo_augment(np.ascontiguousarray(arr), rng)
                    if use_colour:
                        img = Image.fromarray((arr * 255).astype(np.uint8), "RGB")
                        feats[j] = color_features(img, self.cfg["color"])
                out[j] = arr
            return out, feats, idx.astype(np.int64)

        ds = tf.data.Dataset.range(len(batches)).map(
            lambda b: tf.numpy_function(lambda x: load_batch(int(x)), [b], (tf.float32, tf.float32, tf.int64)),
            num_parallel_calls=2,
            deterministic=True,
        )
        yield from ds.prefetch(2).as_numpy_iterator()

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_weights(str(directory / WEIGHTS_NAME))
        (directory / CONFIG_NAME).write_text(json.dumps({"config": self.cfg, "history": self.history}, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ImageTower:
        directory = Path(directory)
        cfg_path = directory / CONFIG_NAME
        if not cfg_path.is_file() or not (directory / WEIGHTS_NAME).is_file():
            raise FileNotFoundError(f"no trained image tower in {directory} (need {CONFIG_NAME} and {WEIGHTS_NAME})")
        meta = json.loads(cfg_path.read_text())
        cfg = meta["config"]
        model = build_tower_model(cfg, color_feature_dim(cfg["color"]))
        model.load_weights(str(directory / WEIGHTS_NAME))
        return cls(model, cfg, meta.get("history"))


