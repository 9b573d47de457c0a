"""Append-only log of live catalogue changes (`SERVING_DIR/delta.jsonl`).

One JSON object per line, written with flush + fsync before the API answers, so an acknowledged
change survives a crash:

    {"op": "add", "ts": 1700000000.0, "item": {...AddItem fields, no image bytes...}, "image_file": "delta_images/<sha256>.png"}
    {"op": "delete", "ts": 1700000000.0, "item_id": "..."}

Uploaded images are decoded (untrusted), re-encoded as PNG and stored under
`SERVING_DIR/delta_images/` named by content hash, so the image file name never comes from a request.
At start-up and after every bundle swap the log is replayed onto the fresh engine; the next
`pixelmatch run --serving-dir` ingests it into the catalogue.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

log = logging.getLogger(__name__)

DELTA_FILE = "delta.jsonl"
DELTA_IMAGES_DIR = "delta_images"


@dataclass(frozen=True)
class DeltaState:
    """The net effect of a log: live items (in insertion order) and deleted ids."""

    added: dict[str, dict[str, Any]]      # item_id -> {"item": {...}, "image_file": str | None}
    deleted: set[str]                     # ids deleted (bundle items or earlier live items)


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
            tmp.write_bytes(data)
            os.replace(tmp, target)
        return f"{DELTA_IMAGES_DIR}/{name}"

    def append(self, records: list[dict[str, Any]]) -> None:
        """Append records atomically with respect to other writers and fsync before returning."""
        if not records:
            return
        lines = "".join(json.dumps({**r, "ts": r.get("ts", time.time())}, sort_keys=True) + "\n" for r in records)
        with self._lock:
            self.serving_dir.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(lines)
                f.flush()
                os.fsync(f.fileno())

    # ---- reading -------------------------------------------------------------------------
    def read(self) -> list[dict[str, Any]]:
        """All well-formed records; a torn or corrupt line is logged and skipped."""
        if not self.path.is_file():
            return []
        out: list[dict[str, Any]] = []
        with self.path.open(encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, start=1):
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    log.warning("delta log %s line %d is not JSON (torn write?); skipped", self.path, n)
                    continue
                if not isinstance(rec, dict) or rec.get("op") not in ("add", "delete"):
                    log.warning("delta log %s line %d has no valid op; skipped", self.path, n)
                    continue
                out.append(rec)
        return out

    def state(self) -> DeltaState:
        """Fold the log: a later add of an id replaces an earlier one, a delete removes it."""
        added: dict[str, dict[str, Any]] = {}
        deleted: set[str] = set()
        for rec in self.read():
            if rec["op"] == "add":
                item = rec.get("item") or {}
                item_id = item.get("item_id")
                if not isinstance(item_id, str):
                    continue
                added.pop(item_id, None)
                added[item_id] = {"item": item, "image_file": rec.get("image_file")}
                deleted.discard(item_id)
            else:
                item_id = rec.get("item_id")
                if isinstance(item_id, str):
                    added.pop(item_id, None)
                    deleted.add(item_id)
        return DeltaState(added=added, deleted=deleted)

    def image_path(self, rel: str | None) -> Path | None:
        """Resolve a stored image reference, refusing anything outside delta_images/."""
        if not rel:
            return None
        p = (self.serving_dir / rel).resolve()
        root = self.images_dir.resolve()
        if root not in p.parents or not p.is_file():
            return None
        return p
