"""Issue 17: awkward but real photos decode to a sensible RGB image or a clear ImageError, never a crash."""
from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from modules.config import load_params
from modules.data.images import ImageError, load_image

SERVING = load_params()["serving"]


def _encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_fully_transparent_png_is_white() -> None:
    for img in (Image.new("RGBA", (16, 16), (200, 0, 0, 0)), Image.new("LA", (16, 16), (30, 0))):
        out = load_image(_encode(img))
        assert out.mode == "RGB" and out.getpixel((8, 8)) == (255, 255, 255)
    pal = Image.new("P", (16, 16), 1)
    pal.putpalette([0, 0, 0, 200, 0, 0] + [0] * 762)
    out = load_image(_encode(pal, transparency=1))     # palette entry 1 transparent
    assert out.getpixel((3, 3)) == (255, 255, 255)


def test_one_pixel_image_refused_with_params_min_side() -> None:
    min_side = int(SERVING["min_image_side"])
    assert min_side > 1
    with pytest.raises(ImageError, match=rf"too small: 1x1.*at least {min_side}"):
        load_image(_encode(Image.new("RGB", (1, 1), (255, 0, 0))), min_side=min_side)
    assert load_image(_encode(Image.new("RGB", (min_side, min_side))), min_side=min_side).size == (min_side,) * 2


def test_cmyk_jpeg_becomes_rgb() -> None:
    out = load_image(_encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG", quality=95))
    r, g, b = out.getpixel((16, 16))
    assert out.mode == "RGB" and r > 200 and g < 60 and b < 60


def test_grayscale_photo_becomes_rgb() -> None:
    grad = Image.fromarray(np.tile(np.arange(0, 256, 4, dtype=np.uint8), (32, 1)), mode="L")
    out = load_image(_encode(grad, "JPEG", quality=95))
    arr = np.asarray(out)
    assert out.mode == "RGB" and arr.shape == (32, 64, 3)
    assert np.abs(arr[..., 0].astype(int) - arr[..., 2]).max() <= 1 and arr[0, -1, 0] > 240


def test_16bit_png_is_scaled_not_clipped() -> None:
    values = np.array([[0, 257 * 64, 257 * 128, 65535]], dtype=np.uint16).repeat(8, axis=0).repeat(4, axis=1)
    img = Image.fromarray(values)
    assert img.mode == "I;16"
    out = np.asarray(load_image(_encode(img)))[0, ::4, 0]
    assert out.tolist() == [0, 64, 128, 255]          # clipping would give [0, 255, 255, 255]


def test_16bit_40_megapixel_png_decodes_bounded() -> None:
    side = int(np.sqrt(int(SERVING["max_image_pixels"])))     # 6324 x 6324 = the limit
    data = _encode(Image.fromarray(np.full((side, side), 30000, dtype=np.uint16)), optimize=False, compress_level=9)
    assert len(data) < 2 * 1024 * 1024                        # a small file ...
    tracemalloc.start()
    try:
        out = load_image(data, max_pixels=int(SERVING["max_image_pixels"]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.size == (side, side) and out.getpixel((0, 0)) == (117, 117, 117)   # 30000 >> 8
    assert peak < 120 * 2**20, f"decode peaked at {peak / 2**20:.0f} MB"   # float64 alone: 320 MB
    with pytest.raises(ImageError, match="too large"):
        load_image(data, max_pixels=side * side - 1)


def test_server_decodes_behind_a_semaphore(tmp_path, monkeypatch) -> None:
    import threading
    import time

    import serving.bundle_manager as bm
    import serving.live_catalog as live

    running, peak, lock = [0], [0], threading.Lock()

    def slow_load(data, **kw):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return Image.new("RGB", (8, 8))
    monkeypatch.setattr(live, "load_image", slow_load)
    manager = bm.BundleManager(tmp_path, load_params())
    threads = [threading.Thread(target=manager.decode_image, args=(b"x",)) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == int(SERVING["max_concurrent_decodes"])
