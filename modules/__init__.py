import os

# Every PixelMatch process runs TensorFlow on legacy tf-keras (TFX 1.16 + TFRS 0.7.7 need it).
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
