"""Live catalogue changes on the serving bundle: admin adds/deletes and the delta-log replay.

:class:`LiveCatalogMixin` is mixed into :class:`serving.bundle_manager.BundleManager`, which owns the state it
uses (the delta log, the decode limits, the mutation lock and the current bundle). Live adds are write-ahead:
image files and the log record are fsynced before the engine changes; a freshly loaded bundle gets the log
replayed onto it before it is swapped in.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from modules.bundle import BundleError
from modules.data.images import ImageError, load_image
from serving.bundle_loading import ITEM_FIELDS, ServingBundle
from serving.delta import DeltaLog

log = logging.getLogger("pixelmatch.serving")


class LiveCatalogMixin:
    """Image decoding, live add/delete and delta replay for BundleManager (which sets these attributes)."""

    delta: DeltaLog
    max_pixels: int
    min_side: int
    _decode_slots: threading.BoundedSemaphore
    _mutation_lock: threading.Lock              # delta append + live apply vs. replay + swap
    _bundle: ServingBundle | None

    def decode_image(self, data: bytes) -> Any:
        """Untrusted image bytes -> RGB image; at most serving.max_concurrent_decodes decodes at once."""
        with self._decode_slots:
            return load_image(data, max_pixels=self.max_pixels, min_side=self.min_side)

    def _decode_item_image(self, image_b64: str | None) -> Any:
        if not image_b64:
            return None
        import base64
        import binascii

        try:
            data = base64.b64decode(image_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ImageError(f"image_base64 is not valid base64: {exc}") from exc
        return self.decode_image(data)

    @staticmethod
    def _engine_record(item: dict[str, Any]) -> dict[str, Any]:
        """AddItem fields -> the items.csv-shaped record SearchEngine.add_items takes."""
        rec = {k: item.get(k) for k in ("item_id", "title", "description", "category", "brand", "price", "gender")}
        rec["description"] = rec.get("description") or ""
        rec.update({k: v for k, v in (item.get("attributes") or {}).items() if k not in rec})
        return rec

    def _apply_add(self, bundle: ServingBundle, entries: list[tuple[dict, Any, str | None]]) -> None:
        """Insert items into `bundle` (caller holds the mutation lock)."""
        records = [self._engine_record(item) for item, _, _ in entries]
        images = [img for _, img, _ in entries]
        bundle.engine.prepare_add()  # the first add's one-off load (the transform graph) outside the write lock
        with bundle.lock.write():
            bundle.engine.add_items(records, images)
            for item, _, image_file in entries:
                iid = item["item_id"]
                rec = {k: item.get(k) for k in ITEM_FIELDS if k != "image_path"}
                rec["attributes"] = dict(item.get("attributes") or {})
                rec["live_added"] = True
                bundle.items[iid] = rec
                p = self.delta.image_path(image_file)
                if p is not None:
                    bundle.image_files[iid] = p
                else:
                    bundle.image_files.pop(iid, None)
                bundle.live_added.add(iid)
                bundle.live_deleted.discard(iid)

    def _apply_delete(self, bundle: ServingBundle, item_id: str) -> None:
        with bundle.lock.write():
            bundle.engine.delete_item(item_id)
            bundle.items.pop(item_id, None)
            bundle.image_files.pop(item_id, None)
            bundle.live_added.discard(item_id)
            bundle.live_deleted.add(item_id)

    def _replay_delta(self, bundle: ServingBundle) -> None:
        """Re-apply the delta log onto a freshly loaded bundle (before it is swapped in)."""
        state = self.delta.state()
        for item_id in state.deleted:
            if item_id in bundle.items:
                try:
                    self._apply_delete(bundle, item_id)
                except KeyError:
                    pass
        entries = []
        for entry in state.added.values():
            item = entry["item"]
            img = None
            p = self.delta.image_path(entry.get("image_file"))
            if p is not None:
                try:
                    img = load_image(p, max_pixels=self.max_pixels)
                except ImageError as exc:
                    log.warning("delta image for %s unusable (%s); adding without image", item["item_id"], exc)
            entries.append((item, img, entry.get("image_file")))
        if entries:  # add_items replaces an id the bundle already has (live values win)
            self._replay_adds(bundle, entries)
        if state.added or state.deleted:
            log.info("replayed delta log: %d live items, %d deletions", len(state.added), len(state.deleted))

    def _replay_adds(self, bundle: ServingBundle, entries: list[tuple[dict, Any, str | None]]) -> None:
        """Add the replayed items in one batch; if that fails, one by one (a bad record is logged and skipped)."""
        try:
            self._apply_add(bundle, entries)
        except Exception as exc:   # one bad record must not refuse every bundle (a crash loop): add one by one
            log.warning("delta replay batch failed (%s: %s); replaying item by item", type(exc).__name__, exc)
            for entry in entries:
                try:
                    self._apply_add(bundle, [entry])
                except Exception as exc1:
                    log.error("delta record for %s skipped: %s: %s", entry[0].get("item_id"),
                              type(exc1).__name__, exc1)

    def add_items(self, items: list[dict[str, Any]]) -> tuple[ServingBundle, float]:
        """Decode images, store them and append to the delta log (fsync), then insert into the live engine.

        Write-ahead: what the engine shows is always in the log. If the insert itself fails after logging,
        the ids that were new are tombstoned in the log (an update of an existing id stays logged and is
        applied at the next replay: the client got an error and retries the same upsert).
        Returns the bundle it was applied to and the add-to-searchable latency in ms.
        Raises ImageError / ValueError for bad input (nothing is logged or inserted then).
        """
        t0 = time.perf_counter()
        decoded = [(item, self._decode_item_image(item.get("image_base64"))) for item in items]
        with self._mutation_lock:
            bundle = self._bundle
            if bundle is None:
                raise BundleError("no bundle loaded")
            entries = []
            log_records = []
            for item, img in decoded:
                stored = {k: v for k, v in item.items() if k != "image_base64"}
                image_file = self.delta.store_image(img) if img is not None else None
                entries.append((stored, img, image_file))
                log_records.append({"op": "add", "item": stored, "image_file": image_file})
            self.delta.append(log_records)   # fsynced before the engine changes
            try:
                self._apply_add(bundle, entries)   # an existing id is replaced (update semantics)
            except Exception:
                new_ids = [item["item_id"] for item, _, _ in entries if item["item_id"] not in bundle.items]
                self.delta.append([{"op": "delete", "item_id": i} for i in new_ids])
                raise
        return bundle, (time.perf_counter() - t0) * 1000.0

    def delete_item(self, item_id: str) -> ServingBundle:
        """Tombstone an item in the live index and record it in the delta log. KeyError if unknown."""
        with self._mutation_lock:
            bundle = self._bundle
            if bundle is None:
                raise BundleError("no bundle loaded")
            if item_id not in bundle.items:
                raise KeyError(item_id)
            self.delta.append([{"op": "delete", "item_id": item_id}])   # write-ahead
            self._apply_delete(bundle, item_id)
        return bundle
