"""PixelMatch encoders: SBERT text (`text`), LiT-style image tower (`tower`), CLIP (`clip`), model-free colour
features (`color`), the `ImageEncoder` protocol and factory (`base`), and CLI helpers (`cli_support`).

Submodules are imported lazily by callers so that `color` stays usable without loading TensorFlow.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
