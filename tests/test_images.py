"""modules.data.images: safe decoding of untrusted images."""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modules.data.images import ImageError, image_to_array, load_image


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _jpeg_bytes(img: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", **kw)
    return buf.getvalue()


def _png_header_bomb(width: int, height: int) -> bytes:
    """A valid-looking PNG whose header claims width x height RGB pixels, with almost no data (built cheaply)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_rgb_png_round_trip_from_bytes_and_path(tmp_path: Path) -> None:
    img = Image.new("RGB", (40, 30), (10, 200, 30))
    data = _png_bytes(img)
    p = tmp_path / "a.png"
    p.write_bytes(data)
    for src in (data, p, str(p)):
        out = load_image(src)
        assert out.mode == "RGB" and out.size == (40, 30)
        assert out.getpixel((5, 5)) == (10, 200, 30)


def test_empty_input_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")
    p = tmp_path / "zero.jpg"
    p.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(p)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="not a regular file"):
        load_image(tmp_path)


def test_text_file_is_not_an_image(tmp_path: Path) -> None:
    p = tmp_path / "notes.jpg"
    p.write_text("this is not an image at all\n")
    with pytest.raises(ImageError, match="not a recognised image"):
        load_image(p)


def test_truncated_jpeg_is_rejected() -> None:
    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8))
    data = _jpeg_bytes(noisy, quality=90)
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(data[: len(data) // 2])


def test_header_bomb_is_rejected_before_decoding() -> None:
    bomb = _png_header_bomb(20000, 20000)
    assert len(bomb) < 200  # 400 M pixels claimed by a couple of hundred bytes
    with pytest.raises(ImageError, match="too large"):
        load_image(bomb)
    # our own limit applies even when it is far below PIL's global guard
    small = _png_bytes(Image.new("RGB", (100, 100)))
    with pytest.raises(ImageError, match="exceeds the limit of 5000"):
        load_image(small, max_pixels=5000)


def test_one_pixel_image_is_valid_and_upscalable() -> None:
    img = load_image(_png_bytes(Image.new("RGB", (1, 1), (255, 0, 0))))
    assert img.size == (1, 1)
    arr = image_to_array(img, 32)
    assert arr.shape == (32, 32, 3) and arr.dtype == np.float32
    assert np.allclose(arr[..., 0], 1.0) and np.allclose(arr[..., 1:], 0.0)


def test_min_side() -> None:
    with pytest.raises(ImageError, match="too small"):
        load_image(_png_bytes(Image.new("RGB", (1, 5))), min_side=2)


def test_rgba_is_composited_on_white() -> None:
    img = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    img.putpixel((0, 0), (0, 0, 255, 255))  # one opaque blue pixel
    out = load_image(_png_bytes(img))
    assert out.mode == "RGB"
    assert out.getpixel((1, 1)) == (255, 255, 255)
    assert out.getpixel((0, 0)) == (0, 0, 255)


def test_grayscale_palette_cmyk_and_16bit() -> None:
    grey = load_image(_png_bytes(Image.new("L", (8, 8), 77)))
    assert grey.mode == "RGB" and grey.getpixel((0, 0)) == (77, 77, 77)

    pal = Image.new("RGB", (8, 8), (0, 128, 255)).convert("P", palette=Image.ADAPTIVE, colors=4)
    out = load_image(_png_bytes(pal))
    assert out.mode == "RGB" and out.getpixel((3, 3)) == (0, 128, 255)

    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    out = load_image(_jpeg_bytes(cmyk, quality=95))
    r, g, b = out.getpixel((4, 4))
    assert out.mode == "RGB" and r > 200 and g < 60 and b < 60

    deep = Image.fromarray(np.full((6, 6), 40000, dtype=np.uint16))
    out = load_image(_png_bytes(deep))
    assert out.mode == "RGB" and out.size == (6, 6)


def test_exif_orientation_is_applied() -> None:
    img = Image.new("RGB", (60, 20), (0, 200, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    out = load_image(_jpeg_bytes(img, exif=exif.tobytes()))
    assert out.size == (20, 60)


def test_unsupported_format_is_rejected() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, format="ICO")
    with pytest.raises(ImageError, match="unsupported image format ICO"):
        load_image(buf.getvalue())


def test_bad_source_type() -> None:
    with pytest.raises(ImageError, match="unsupported image source type"):
        load_image(123)  # type: ignore[arg-type]


def test_image_to_array_converts_modes_and_sizes() -> None:
    arr = image_to_array(Image.new("L", (10, 20), 255), (8, 4))
    assert arr.shape == (4, 8, 3) and np.allclose(arr, 1.0)
    with pytest.raises(ValueError):
        image_to_array(Image.new("RGB", (4, 4)), 0)
