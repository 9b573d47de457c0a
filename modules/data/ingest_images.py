"""The image stage of ``pixelmatch ingest``: where each row's photo comes from (an images folder or an
``image_path`` column, never through a symlink or outside the CSV's folder), and its normalised copy under
``DATA_DIR/images`` (RGB JPEG, longest side at most ``ingest.max_image_side``). Images are streamed: each one is
decoded, normalised, written and released before the next is opened."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from modules.data.images import ImageError, load_image
from modules.data.ingest_report import IngestError, IngestReport

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp")


@dataclass
class ImageSource:
    """Where the photos come from: ``mode`` is images_dir | image_path_column | none."""

    mode: str
    index: dict[str, Path]              # <id> -> file (mode images_dir)
    images_dir: str | Path | None       # as the caller gave it (used in messages)
    csv_dir: Path                       # image_path cells are relative to it


def image_source(images_dir: str | Path | None, cols: dict[str, int], csv_path: Path) -> ImageSource:
    """Index ``images_dir`` (raises IngestError when it is not a directory), else use an image_path column."""
    images_index: dict[str, Path] = {}
    image_mode = "none"
    if images_dir is not None:
        images_index = _index_images_dir(Path(images_dir))
        image_mode = "images_dir"
    elif "image_path" in cols:
        image_mode = "image_path_column"
    return ImageSource(mode=image_mode, index=images_index, images_dir=images_dir,
                        csv_dir=csv_path.resolve().parent)


def _safe_stem(item_id: str, used: set[str]) -> str:
    """A file name stem for an item id that cannot escape images/ and never collides."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", item_id)[:80].lstrip(".") or "item"
    if stem != item_id or stem.lower() in used:
        stem = f"{stem}-{hashlib.sha1(item_id.encode('utf-8')).hexdigest()[:10]}"
    used.add(stem.lower())
    return stem


def _find_image(item_id: str, images_index: dict[str, Path]) -> Path | None:
    return images_index.get(item_id) or images_index.get(item_id.lower())


def _image_path_source(csv_dir: Path, rel: str) -> tuple[Path | None, str | None]:
    """``rel`` (an image_path cell) -> a file under ``csv_dir``, or a reason it is refused.

    Refused: absolute paths, drive letters, ``..`` components, and any symlink on the way (a symlinked folder
    or file could point anywhere the ingesting user can read)."""
    parts = Path(rel.replace("\\", "/")).parts
    if not parts or Path(rel).is_absolute() or rel.startswith(("/", "\\")) or ":" in parts[0] or ".." in parts:
        return None, f"image_path {rel!r} must be a relative path inside the CSV's folder (no '..', not absolute)"
    p = csv_dir
    for part in parts:
        p = p / part
        if p.is_symlink():
            return None, f"image_path {rel!r} goes through a symlink ({part!r}); symlinks are not followed"
    if csv_dir.resolve() not in p.resolve().parents:
        return None, f"image_path {rel!r} resolves outside the CSV's folder"
    return p, None


def _index_images_dir(images_dir: Path) -> dict[str, Path]:
    """`<id>.<ext>` files in images_dir keyed by id (one directory listing, preferring .jpg > .jpeg > .png > .webp)."""
    if not images_dir.is_dir():
        raise IngestError(f"--images {images_dir}: not a directory")
    rank = {ext: i for i, ext in enumerate(IMAGE_EXTENSIONS)}
    best: dict[str, tuple[int, Path]] = {}
    with os.scandir(images_dir) as entries:
        for entry in entries:
            stem, ext = os.path.splitext(entry.name)
            ext = ext.lower()
            if ext not in rank or not entry.is_file(follow_symlinks=False):   # symlinks are not followed
                continue
            for key in {stem, stem.lower()}:
                if key not in best or rank[ext] < best[key][0]:
                    best[key] = (rank[ext], Path(entry.path))
    return {k: v[1] for k, v in best.items()}


def _write_normalised_image(src: Path, dst: Path, cfg: dict[str, Any]) -> None:
    """Decode src safely, convert to RGB, downscale to the max side, write a JPEG (raises ImageError)."""
    img = load_image(src, max_pixels=int(cfg["max_image_pixels"]))
    try:
        side = int(cfg["max_image_side"])
        if max(img.size) > side:
            img.thumbnail((side, side))
        tmp = dst.with_suffix(".tmp")
        img.save(tmp, format="JPEG", quality=int(cfg["jpeg_quality"]))
        os.replace(tmp, dst)
    finally:
        img.close()


def fresh_images_dir(out: Path) -> Path:
    """Create ``out`` and an empty ``out/images`` (raises IngestError when ``out`` is a file)."""
    if out.exists() and not out.is_dir():
        raise IngestError(f"--out {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    images_out = out / "images"
    if images_out.exists():
        shutil.rmtree(images_out)  # a re-ingest must not leave stale photos from a previous catalog
    images_out.mkdir()
    return images_out


def copy_images(rows: list[dict[str, str]], out: Path, images: ImageSource, cfg: dict[str, Any],
                 report: IngestReport, progress: bool) -> int:
    """Give every row a normalised photo under ``out/images`` or an empty image_path; return how many got one."""
    used_stems: set[str] = set()
    n_images = 0
    for r in tqdm(rows, desc="ingest: checking + copying images", unit="img", disable=not progress):
        n_images += _copy_row_image(r, out, images, used_stems, cfg, report)
    return n_images


def _locate_image(r: dict[str, str], images: ImageSource, report: IngestReport) -> tuple[Path | None, str | None]:
    """(source file or None, the message if it turns out missing); (None, None) when an unsafe image_path
    was refused (already reported)."""
    if images.mode == "images_dir":
        return (_find_image(r["item_id"], images.index),
                f"no <id>.jpg|.jpeg|.png|.webp for {r['item_id']!r} in {images.images_dir}")
    if images.mode == "image_path_column" and r.get("image_path"):
        src, unsafe = _image_path_source(images.csv_dir, r["image_path"])
        if unsafe:
            report.add(int(r["_line"]), r["item_id"], "unsafe_image_path", "text_only", unsafe)
            return None, None
        return src, f"image_path {r['image_path']!r} not found (relative to {images.csv_dir})"
    return None, "empty image_path cell"


def _copy_row_image(r: dict[str, str], out: Path, images: ImageSource, used_stems: set[str],
                    cfg: dict[str, Any], report: IngestReport) -> bool:
    """Normalise one row's photo into ``out/images``; False (reported unless text-only) when it has none."""
    src, missing_msg = _locate_image(r, images, report)
    r["image_path"] = ""
    if missing_msg is None:
        return False
    if src is None or not src.is_file():
        if images.mode != "none":
            report.add(int(r["_line"]), r["item_id"], "missing_image", "text_only", missing_msg)
        return False
    rel = f"images/{_safe_stem(r['item_id'], used_stems)}.jpg"
    try:
        _write_normalised_image(src, out / rel, cfg)
    except ImageError as e:
        report.add(int(r["_line"]), r["item_id"], "bad_image", "text_only", f"{src.name}: {e}")
        return False
    except OSError as e:
        report.add(int(r["_line"]), r["item_id"], "bad_image", "text_only", f"{src.name}: cannot be written: {e}")
        return False
    r["image_path"] = rel
    return True
