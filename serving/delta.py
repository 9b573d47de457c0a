"""Append-only log of live catalogue changes (`SERVING_DIR/delta.jsonl`).

One JSON object per line, written with flush + fsync BEFORE the live engine changes and before the API
answers (write-ahead), so an acknowledged change survives a crash. A torn last line (a crash mid-write,
never acknowledged) is cut off before the next append, so it cannot swallow the next record:

    {"op": "add", "ts": 1700000000.0, "item": {...AddItem fields, no image bytes...}, "image_file": "delta_images/<sha256>.png"}
    {"op": "delete", "ts": 1700000000.0, "item_id": "..."}

Uploaded images are decoded (untrusted), re-encoded as PNG and stored under
`SERVING_DIR/delta_images/` named by content hash, so the image file name never comes from a request.
At start-up and after every bundle swap the log is replayed onto the fresh engine; the next
`pixelmatch run --serving-dir` ingests it into the catalogue.
"""
from __future__ import annotations

import fcntl
import hashlib
import io
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from PIL import Image

# The log format (validation and folding) lives in modules/, shared with the pipeline's ingestion.
from modules.data.delta_log import DELTA_FILE, DELTA_IMAGES_DIR, DeltaState, fold_delta, read_delta_log

__all__ = ["DELTA_FILE", "DELTA_IMAGES_DIR", "DeltaLog", "DeltaState"]

log = logging.getLogger(__name__)
_TAIL_CHUNK = 1 << 16


def _fsync_dir(path: Path) -> None:
    """Make a file's creation/rename in ``path`` durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DeltaLog:
    def __init__(self, serving_dir: str | Path) -> None:
        self.serving_dir = Path(serving_dir)
        self.path = self.serving_dir / DELTA_FILE
        self.images_dir = self.serving_dir / DELTA_IMAGES_DIR
        self._lock = threading.Lock()

    # ---- writing -------------------------------------------------------------------------
    def store_image(self, img: Image.Image) -> str:
        """Save a decoded image as PNG under delta_images/, return its path relative to SERVING_DIR."""
        buf = io.BytesIO()
        img.convert("RGB").save(buf, format="PNG")
        data = buf.getvalue()
        name = hashlib.sha256(data).hexdigest()[:32] + ".png"
        self.images_dir.mkdir(parents=True, exist_ok=True)
        target = self.images_dir / name
        if not target.exists():
            tmp = target.with_suffix(".tmp")
            with tmp.open("wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
            _fsync_dir(self.images_dir)
        return f"{DELTA_IMAGES_DIR}/{name}"

    def append(self, records: list[dict[str, Any]]) -> None:
        """Append records atomically with respect to other writers and fsync before returning."""
        if not records:
            return
        lines = "".join(json.dumps({**r, "ts": r.get("ts", time.time())}, sort_keys=True) + "\n" for r in records)
        with self._lock:
            self.serving_dir.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            with self.path.open("ab") as f:
                # `serve --workers N`: other processes append too. Without this lock, one worker's tail repair
                # could cut another's half-written (not yet acknowledged) line. Released when f closes.
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
                self._repair_tail(f)
                self._write(f, lines.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            if created:
                _fsync_dir(self.serving_dir)

    @staticmethod
    def _write(f: Any, data: bytes) -> None:
        f.write(data)

    def _repair_tail(self, f: Any) -> None:
        """Cut an unterminated last line (a write torn by a crash; it was never acknowledged)."""
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return
        with self.path.open("rb") as r:
            r.seek(size - 1)
            if r.read(1) == b"\n":
                return
            keep, end = 0, size
            while end > 0:                          # the last newline, reading backwards in chunks
                start = max(0, end - _TAIL_CHUNK)
                r.seek(start)
                pos = r.read(end - start).rfind(b"\n")
                if pos >= 0:
                    keep = start + pos + 1
                    break
                end = start
        log.warning("delta log %s: cut a torn last line (%d bytes) before appending", self.path, size - keep)
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())

    # ---- reading -------------------------------------------------------------------------
    def read(self) -> list[dict[str, Any]]:
        """All well-formed records; a torn or corrupt line is logged and skipped."""
        parsed = read_delta_log(self.path)
        for problem in parsed.problems:
            log.warning("delta log %s; skipped", problem)
        if parsed.torn:
            log.warning("delta log %s ends in an unterminated line (torn write?); ignored", self.path)
        return parsed.records

    def state(self) -> DeltaState:
        """Fold the log: a later add of an id replaces an earlier one, a delete removes it."""
        return fold_delta(self.read())

    def image_path(self, rel: str | None) -> Path | None:
        """Resolve a stored image reference, refusing anything outside delta_images/."""
        if not rel:
            return None
        p = (self.serving_dir / rel).resolve()
        root = self.images_dir.resolve()
        if root not in p.parents or not p.is_file():
            return None
        return p
