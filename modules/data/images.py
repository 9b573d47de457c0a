"""Safe image loading for untrusted input (uploads, ingested catalogs, encoder inputs).

Every failure becomes an :class:`ImageError` whose message says what is wrong, so that callers
(the HTTP server, the ingest report, the CLI) can turn it into a clear 4xx / report line.

Order of checks in :func:`load_image`:
1. empty input, unreadable path;
2. ``Image.open`` reads only the header: unknown formats are rejected here;
3. the pixel count from the header is checked against ``max_pixels`` BEFORE any decoding
   (a 20000x20000 PNG is a few hundred bytes on disk but 1.2 GB in memory);
4. ``img.load()`` forces the full decode, so truncated / corrupt files fail here;
5. EXIF orientation is applied, then the mode is normalised to RGB: alpha / palette / tRNS transparency is
   composited on white, CMYK and grayscale become RGB, 16-bit data is scaled (v >> 8) to 8 bits in integer
   arithmetic (a 40-megapixel 16-bit PNG costs ~80 MB decoded, never a float64 copy).

The server additionally bounds how many decodes run at once (a semaphore, ``serving.max_concurrent_decodes``)
and refuses images with a side below ``serving.min_image_side``.
"""
from __future__ import annotations

import io
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 40_000_000
# Formats we accept. Anything else that PIL can identify (EPS, PDF, ICO, ...) is refused.
SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO"})

# PIL's own guard: Image.open raises DecompressionBombError above 2x this value. We check the header
# size ourselves first (with the caller's limit), so this is the second line of defence.
Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS
# Rows of a 16-bit image are rescaled this many pixels at a time (bounded scratch memory).
_BAND_PIXELS = 1 << 22
# Never silently accept truncated files.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageError(ValueError):
    """An image could not be used; the message says why (safe to show to the user)."""


def _read_source(src: bytes | bytearray | memoryview | str | Path) -> bytes:
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
        origin = "image data"
    elif isinstance(src, (str, Path)):
        path = Path(src)
        if not path.exists():
            raise ImageError(f"image file not found: {path}")
        if not path.is_file():
            raise ImageError(f"not a regular file: {path}")
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ImageError(f"cannot read image file {path}: {e.strerror or e}") from e
        origin = f"image file {path}"
    else:
        raise ImageError(f"unsupported image source type: {type(src).__name__}")
    if len(data) == 0:
        raise ImageError(f"{origin} is empty (0 bytes)")
    return data


def _deep_to_l(img: Image.Image) -> Image.Image:
    """High bit-depth grayscale (I;16*, I, F) -> 8-bit L without a float64 copy of the whole image.

    16-bit data is scaled by its full range (v >> 8), not clipped and not contrast-stretched; a 32-bit "I"
    image whose values fit in 8 bits is kept as is; "F" is stretched from its own min/max in float32.
    """
    if img.mode.startswith("I;16"):
        w, h = img.size
        out = np.empty((h, w), np.uint8)
        band = max(1, _BAND_PIXELS // max(1, w))   # convert in row bands: no full-size uint16 copy either
        for y in range(0, h, band):
            out[y:y + band] = np.right_shift(np.asarray(img.crop((0, y, w, min(h, y + band)))), 8)
        return Image.fromarray(out, mode="L")
    arr = np.asarray(img)
    if img.mode == "I":
        hi = int(arr.max()) if arr.size else 0
        shift = 0 if hi <= 255 else 8
        return Image.fromarray((np.clip(arr, 0, 65535) >> shift).astype(np.uint8), mode="L")
    arr = arr.astype(np.float32, copy=False)
    lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
    scaled = np.zeros(arr.shape, np.uint8) if not hi > lo else ((arr - lo) * (255.0 / (hi - lo))).astype(np.uint8)
    return Image.fromarray(scaled, mode="L")


def _to_rgb(img: Image.Image) -> Image.Image:
    """Normalise any PIL mode to RGB; transparent pixels (alpha, palette or tRNS transparency) go on white."""
    if img.mode == "RGB" and "transparency" not in img.info:
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        img = _deep_to_l(img)
    if img.mode in ("P", "PA", "LA", "La", "RGBa") or "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.getchannel("A"))
        return background
    # CMYK (Pillow undoes Adobe's inverted CMYK JPEGs), L, 1, YCbCr, LAB, HSV ...
    return img.convert("RGB")


def load_image(
    src: bytes | str | Path,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = 1,
) -> Image.Image:
    """Decode ``src`` (raw bytes or a file path) into an RGB ``PIL.Image``.

    ``min_side`` defaults to 1 for catalog images; the server passes ``serving.min_image_side``.
    Raises :class:`ImageError` for empty input, non-images, unsupported formats, images above ``max_pixels`` (checked from the header before
    decoding), images with a side below ``min_side``, and truncated or corrupt files.
    """
    if max_pixels <= 0:
        raise ValueError("max_pixels must be positive")
    data = _read_source(src)
    with warnings.catch_warnings():
        # PIL warns (rather than raises) between MAX_IMAGE_PIXELS and 2x; we enforce our own limit.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as e:
            raise ImageError(f"image is too large (decompression bomb guard): {e}") from e
        except UnidentifiedImageError as e:
            raise ImageError("not a recognised image (unknown or corrupt format)") from e
        except (OSError, ValueError, SyntaxError) as e:
            raise ImageError(f"cannot read image header: {e}") from e

        fmt = img.format or "unknown"
        if fmt not in SUPPORTED_FORMATS:
            raise ImageError(f"unsupported image format {fmt}; supported: {', '.join(sorted(SUPPORTED_FORMATS))}")
        width, height = img.size
        if width * height > max_pixels:
            raise ImageError(
                f"image is too large: {width}x{height} = {width * height} pixels exceeds the limit of {max_pixels}"
            )
        if min(width, height) < max(1, min_side):
            raise ImageError(f"image is too small: {width}x{height}, each side must be at least {min_side} pixels")
        try:
            img.load()  # force the full decode: truncated / corrupt data fails here, not later
        except Image.DecompressionBombError as e:
            raise ImageError(f"image is too large (decompression bomb guard): {e}") from e
        except (OSError, ValueError, SyntaxError, EOFError) as e:
            raise ImageError(f"image data is truncated or corrupt ({fmt}): {e}") from e
        except MemoryError as e:
            raise ImageError("image needs too much memory to decode") from e

        try:
            img = ImageOps.exif_transpose(img)
        except Exception:  # a broken EXIF block must not reject an otherwise fine image
            pass
        try:
            rgb = _to_rgb(img)
        except (OSError, ValueError) as e:
            raise ImageError(f"cannot convert image mode {img.mode} to RGB: {e}") from e
    rgb.load()
    return rgb


def image_to_array(img: Image.Image, size: int | tuple[int, int]) -> np.ndarray:
    """Resize an RGB image to ``size`` (square int or (width, height)) and return float32 in [0, 1], HxWx3.

    Tiny images (down to 1x1) are upscaled; non-RGB modes are converted first.
    """
    w, h = (size, size) if isinstance(size, int) else size
    if w <= 0 or h <= 0:
        raise ValueError(f"size must be positive, got {size}")
    if img.mode != "RGB":
        img = _to_rgb(img)
    resized = img.resize((w, h), Image.BILINEAR)
    return np.asarray(resized, dtype=np.float32) / 255.0


def map_photos(job: Any, paths: Sequence[str | Path], workers: int, chunksize: int = 32,
               progress: bool = True, desc: str = "photos") -> Iterator[Any]:
    """``job(str(path))`` for every path, in order: the one home of parallel photo iteration (EmbeddingGen's photo
    pass, the colour and backbone passes). ``job`` must be picklable (a module-level function or a ``partial`` of
    one); with ``workers`` > 1 and at least ``chunksize`` photos per worker it runs in that many spawned processes
    (spawn: never fork a process running TF), otherwise in this one. A tqdm bar when ``progress``."""
    n = len(paths)
    pool = None
    if workers > 1 and n >= chunksize * workers:
        import multiprocessing

        pool = multiprocessing.get_context("spawn").Pool(workers)
        it: Iterator[Any] = pool.imap(job, [str(p) for p in paths], chunksize=chunksize)
    else:
        it = (job(str(p)) for p in paths)
    if progress:
        from tqdm.auto import tqdm

        it = iter(tqdm(it, total=n, desc=desc, unit="img"))
    try:
        yield from it
    finally:
        if pool is not None:
            pool.close()
            pool.join()
