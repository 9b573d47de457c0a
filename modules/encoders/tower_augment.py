"""Photo augmentation for training the image tower (numpy + PIL): background swap, random resized crop, small
rotation and colour jitter, so the tower learns to embed query photos taken in other framings, light and
surroundings next to the item they show. Used by :meth:`modules.encoders.tower.ImageTower.train`'s batch stream."""
from __future__ import annotations

import numpy as np
from PIL import Image

# Generic photo augmentations (the usual contrastive-learning recipe: random resized crop + small rotation + colour
# jitter, as in SimCLR / torchvision's RandomResizedCrop and ColorJitter), plus background replacement. Hue jitter
# stays small: the tower must keep colours apart, and a large hue shift would turn a red item into an orange one.
_CROP_AREA = (0.5, 1.0)  # share of the photo's area kept by the random crop
_CROP_ASPECT = (3 / 4, 4 / 3)  # aspect-ratio range of the crop (torchvision's default)
_MAX_ROTATION = 10.0  # degrees, either way
_BRIGHTNESS, _CONTRAST, _SATURATION = 0.3, 0.3, 0.3  # jitter factors drawn from [1 - x, 1 + x]
_HUE = 0.02  # hue shift, fraction of the colour wheel, either way (~7 degrees)
_BACKGROUND_SWAP = 0.5  # chance of replacing the background (foreground mask) with a random texture
_TEXTURE_CELLS = (2, 12)  # the texture is a random colour grid of this many cells a side, smoothly upsampled
_TEXTURE_GRAIN = 0.04  # standard deviation of the per-pixel noise added to the texture (0..1 scale)


def _texture_background(size: int, rng: np.random.Generator) -> np.ndarray:
    """A random smooth texture in [0, 1] (size x size x 3): a coarse grid of random colours, bicubic-upsampled,
    plus per-pixel noise."""
    cells = int(rng.integers(_TEXTURE_CELLS[0], _TEXTURE_CELLS[1] + 1))
    grid = Image.fromarray((rng.random((cells, cells, 3)) * 255).astype(np.uint8), "RGB")
    smooth = np.asarray(grid.resize((size, size), Image.BICUBIC), dtype=np.float32) / 255.0
    return np.clip(smooth + rng.normal(0.0, _TEXTURE_GRAIN, size=smooth.shape).astype(np.float32), 0.0, 1.0)


def _swap_background(arr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``arr`` with its background (outside :func:`modules.encoders.color_mask.foreground_mask`) replaced by a texture."""
    from modules.encoders.color_mask import foreground_mask

    mask = foreground_mask(arr.astype(np.float64) * 255.0)[..., None]
    return np.where(mask, arr, _texture_background(arr.shape[0], rng)).astype(np.float32)


def _resized_crop(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A random crop (area share in :data:`_CROP_AREA`, aspect in :data:`_CROP_ASPECT`) resized back to full size."""
    w, h = img.size
    area = w * h * rng.uniform(*_CROP_AREA)
    aspect = float(np.exp(rng.uniform(np.log(_CROP_ASPECT[0]), np.log(_CROP_ASPECT[1]))))
    cw, ch = min(w, max(1, int(round(np.sqrt(area * aspect))))), min(h, max(1, int(round(np.sqrt(area / aspect)))))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return img.crop((x0, y0, x0 + cw, y0 + ch)).resize((w, h), Image.BILINEAR)


def _colour_jitter(arr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast and saturation scaled by factors in [1 - x, 1 + x], hue rotated by up to :data:`_HUE`."""
    out = arr * rng.uniform(1 - _BRIGHTNESS, 1 + _BRIGHTNESS)
    grey = out @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    out = grey.mean() + (out - grey.mean()) * rng.uniform(1 - _CONTRAST, 1 + _CONTRAST)
    grey = (out @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
    out = grey + (out - grey) * rng.uniform(1 - _SATURATION, 1 + _SATURATION)
    hsv = np.asarray(Image.fromarray((np.clip(out, 0, 1) * 255).astype(np.uint8), "RGB").convert("HSV"))
    hsv = hsv.copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int32) + int(round(rng.uniform(-_HUE, _HUE) * 255))) % 256
    return np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"), dtype=np.float32) / 255.0


def photo_augment(arr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A generic photo augmentation of ``arr`` (H x W x 3 in [0, 1], square), float32 in [0, 1], same shape: with
    chance :data:`_BACKGROUND_SWAP` the background becomes a random texture, then a random resized crop, a small
    rotation (corners filled with the edge colour) and colour jitter. Trains the tower to embed query photos
    (``search_image``) taken in other framings, light and surroundings next to the item they show."""
    arr = np.clip(np.asarray(arr, dtype=np.float32), 0.0, 1.0)
    if rng.random() < _BACKGROUND_SWAP:
        arr = _swap_background(arr, rng)
    img = _resized_crop(Image.fromarray((arr * 255).astype(np.uint8), "RGB"), rng)
    fill = tuple(int(v) for v in np.median(np.asarray(img)[[0, -1]].reshape(-1, 3), axis=0))
    img = img.rotate(float(rng.uniform(-_MAX_ROTATION, _MAX_ROTATION)), resample=Image.BILINEAR, fillcolor=fill)
    return np.clip(_colour_jitter(np.asarray(img, dtype=np.float32) / 255.0, rng), 0.0, 1.0).astype(np.float32)
