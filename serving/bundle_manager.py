"""Load, validate and hot-swap serving bundles (`SERVING_DIR/<version>/`).

Swap protocol:
  1. read `LATEST`, verify every checksum of that version (`modules.bundle.verify_bundle`);
  2. load the SearchEngine (and recommender) fully, run a smoke query, replay the delta log;
  3. replace ONE reference (`self._bundle`). Requests that already took the old `ServingBundle`
     keep using it until they finish; nothing is mutated in place across versions.
A bundle that fails any step is refused with a log line and the old one keeps serving; the watcher does
not retry a refused version until LATEST or its manifest changes. With nothing serving (start-up), the
last good version (`LAST_GOOD`), then the newest other versions, are tried instead.
Reloads (admin endpoint, LATEST watcher) are serialised by a lock. There is no process-wide engine lock:
searches run in parallel (thread-local tokenizers, onnxruntime sessions, FAISS per-call search parameters,
one-thread LightGBM predicts are all safe to share), and each bundle's readers-writer lock only keeps a live
add/delete (which changes the engine's arrays and indexes) from running while that bundle is being searched.
Live adds are write-ahead: image files and the log record are fsynced before the engine changes.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modules.bundle import BundleError, read_latest, verify_bundle
from modules.config import load_params
from modules.data.images import ImageError, load_image
from serving.delta import DeltaLog
from serving.rwlock import RWLock

log = logging.getLogger("pixelmatch.serving")

REQUIRED_MANIFEST_KEYS = ("files",)
LAST_GOOD_FILE = "LAST_GOOD"
ITEM_FIELDS = ("item_id", "title", "description", "category", "brand", "price", "gender", "image_path")
# items.csv columns that are not free attributes
_CORE_COLUMNS = {*ITEM_FIELDS, "created_at"}


def _clean(value: Any) -> Any:
    """pandas/numpy scalars -> JSON-friendly Python values (NaN -> None)."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


@dataclass
class ServingBundle:
    """Everything one request needs; the engine and tables change only under `lock.write()`."""

    version: str
    path: Path
    manifest: dict[str, Any]
    engine: Any                          # modules.search.SearchEngine
    recommender: Any | None              # modules.recommend.hybrid.HybridRecommender
    items: dict[str, dict[str, Any]]     # item_id -> display record (bundle + live items)
    image_files: dict[str, Path]         # item_id -> image file inside the bundle or delta_images/
    loaded_at: float = field(default_factory=time.time)
    # Searches take lock.read() (many at once); live adds/deletes take lock.write(). The recommender is not
    # known to be thread-safe, so recommend calls take lock.write() too.
    lock: RWLock = field(default_factory=RWLock)
    live_added: set[str] = field(default_factory=set)
    live_deleted: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class ReloadResult:
    outcome: str                 # swapped | unchanged | refused
    version: str | None          # the version serving after the call
    previous_version: str | None
    message: str
    load_ms: float | None = None


BundleLoader = Callable[[Path, dict], tuple[Any, Any | None]]


def load_components(version_dir: Path, params: dict) -> tuple[Any, Any | None]:
    """Default loader: SearchEngine from `search/` with the LambdaMART re-ranker from `ranker/` (optional),
    HybridRecommender from `recommend/` (optional). The query encoder is the bundle's ONNX runtime
    (`model/text_runtime/`) when it has one and encoders.text.runtime.kind is onnx, else the TF encoder."""
    from modules.search import SearchEngine

    ranker = None
    if (version_dir / "ranker").is_dir():
        from modules.search.rerank import LambdaMARTRanker

        ranker = LambdaMARTRanker.load(version_dir / "ranker")
    engine = SearchEngine.load(version_dir / "search", params=params, ranker=ranker,
                               text_encoder=runtime_text_encoder(version_dir, params))
    recommender = None
    if (version_dir / "recommend").is_dir():
        from modules.recommend.hybrid import HybridRecommender

        recommender = HybridRecommender.load(version_dir / "recommend")
    return engine, recommender


def runtime_text_encoder(version_dir: Path, params: dict) -> Any | None:
    """The bundle's onnxruntime query encoder, or None (SearchEngine.load then builds the TF one)."""
    from modules.encoders.text_runtime import RUNTIME_FILE, load_runtime, runtime_params

    rt_dir = version_dir / "model" / "text_runtime"
    if runtime_params(params)["kind"] != "onnx" or not (rt_dir / RUNTIME_FILE).is_file():
        log.info("%s: no ONNX text runtime; using the TensorFlow text encoder", version_dir.name)
        return None
    return load_runtime(rt_dir, params)


def item_table(engine: Any, version_dir: Path) -> pd.DataFrame:
    """The catalogue the engine indexes: `engine.items` if it has one, else `search/items.parquet`."""
    items = getattr(engine, "items", None)
    if isinstance(items, pd.DataFrame):
        alive = getattr(engine, "alive", None)   # SearchEngine keeps tombstoned rows with alive=False
        if alive is not None and len(alive) == len(items):
            items = items[np.asarray(alive, dtype=bool)]
        return items.drop_duplicates("item_id", keep="last")
    path = version_dir / "search" / "items.parquet"
    if path.is_file():
        return pd.read_parquet(path)
    raise BundleError(f"{version_dir}: no item table (engine.items or search/items.parquet)")


def _records_and_images(df: pd.DataFrame, version_dir: Path) -> tuple[dict[str, dict], dict[str, Path]]:
    records: dict[str, dict[str, Any]] = {}
    images: dict[str, Path] = {}
    root = version_dir.resolve()
    attr_cols = [c for c in df.columns if c not in _CORE_COLUMNS]
    for row in df.to_dict(orient="records"):
        item_id = str(row["item_id"])
        rec = {k: _clean(row.get(k)) for k in ITEM_FIELDS if k in row}
        rec["item_id"] = item_id
        rec["title"] = str(rec.get("title") or "")
        rec["attributes"] = {c: str(v) for c in attr_cols if (v := _clean(row.get(c))) not in (None, "")}
        records[item_id] = rec
        rel = rec.get("image_path")
        if rel:
            # Resolved once, at load time, from the bundle's own table; must stay inside the bundle.
            p = (root / str(rel)).resolve()
            if root in p.parents and p.is_file():
                images[item_id] = p
    return records, images


class BundleManager:
    def __init__(
        self,
        serving_dir: str | Path,
        params: dict,
        loader: BundleLoader = load_components,
        on_swap: Callable[[ServingBundle], None] | None = None,
        prepare: Callable[[ServingBundle], None] | None = None,
    ) -> None:
        """`prepare(bundle)` runs on a freshly loaded bundle before validation (e.g. plug TF Serving in);
        `on_swap(bundle)` runs after a swap (metrics)."""
        self.serving_dir = Path(serving_dir)
        self.params = params
        self.loader = loader
        self.on_swap = on_swap
        self.prepare = prepare
        self.delta = DeltaLog(self.serving_dir)
        scfg = {**load_params().get("serving", {}), **params.get("serving", {})}
        self.max_pixels = int(scfg["max_image_pixels"])
        self.min_side = int(scfg["min_image_side"])
        self.fallback_versions = int(scfg["fallback_versions"])
        self._decode_slots = threading.BoundedSemaphore(int(scfg["max_concurrent_decodes"]))
        self._refused: tuple[str, int] | None = None   # (version, manifest mtime) the watcher must not retry
        self._bundle: ServingBundle | None = None
        self._reload_lock = threading.Lock()      # one reload at a time
        self._mutation_lock = threading.Lock()    # delta append + live apply vs. replay + swap
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()
        self.last_error: str | None = None

    # ---- access --------------------------------------------------------------------------
    @property
    def bundle(self) -> ServingBundle | None:
        """The current bundle; take it ONCE per request and use that reference throughout."""
        return self._bundle

    # ---- loading -------------------------------------------------------------------------
    def _resolve_latest(self) -> tuple[str, Path]:
        version = read_latest(self.serving_dir)
        if version is None:
            raise BundleError(f"{self.serving_dir / 'LATEST'} missing or empty: nothing pushed yet")
        if "/" in version or "\\" in version or version.startswith("."):
            raise BundleError(f"LATEST names an invalid version {version!r}")
        vdir = self.serving_dir / version
        if not vdir.is_dir():
            raise BundleError(f"LATEST names {version!r} but {vdir} does not exist")
        return version, vdir

    def build(self, version: str, vdir: Path) -> ServingBundle:
        """Verify and load one version completely (no swap). Raises on any problem."""
        manifest = verify_bundle(vdir)
        missing = [k for k in REQUIRED_MANIFEST_KEYS if k not in manifest]
        if missing:
            raise BundleError(f"{vdir}/manifest.json lacks {missing}")
        engine, recommender = self.loader(vdir, self.params)
        df = item_table(engine, vdir)
        if df.empty:
            raise BundleError(f"{vdir}: the item table is empty")
        records, images = _records_and_images(df, vdir)
        bundle = ServingBundle(version=version, path=vdir, manifest=manifest, engine=engine,
                               recommender=recommender, items=records, image_files=images)
        if self.prepare is not None:
            self.prepare(bundle)
        self._smoke_test(bundle)
        return bundle

    @staticmethod
    def _smoke_test(bundle: ServingBundle) -> None:
        """The index and query encoder must answer with a catalogue item before we serve them."""
        first_id = next(iter(bundle.items))
        probe = bundle.items[first_id]["title"] or first_id
        try:
            with bundle.lock.read():
                resp = bundle.engine.search_text(probe, top_k=1)
        except Exception as exc:  # any failure here means the bundle is unusable
            raise BundleError(f"{bundle.path}: smoke query failed: {type(exc).__name__}: {exc}") from exc
        if not resp.results or str(resp.results[0].item_id) not in bundle.items:
            raise BundleError(f"{bundle.path}: smoke query returned no catalogue item")

    def reload(self, force: bool = False) -> ReloadResult:
        """Load the version LATEST names and swap it in. Never raises for a bad bundle: the old
        one keeps serving, the reason is logged and returned (outcome "refused")."""
        with self._reload_lock:
            previous = self._bundle.version if self._bundle is not None else None
            try:
                version, vdir = self._resolve_latest()
            except BundleError as exc:
                self.last_error = str(exc)
                log.error("bundle reload refused: %s", exc)
                return ReloadResult("refused", previous, previous, str(exc))
            if previous == version and not force:
                return ReloadResult("unchanged", version, previous, f"version {version} already serving")
            t0 = time.perf_counter()
            try:
                self._swap_in(version, vdir)
            except Exception as exc:
                msg = f"bundle {version} refused, still serving {previous or 'nothing'}: {type(exc).__name__}: {exc}"
                self._refused = (version, self._manifest_mtime(vdir))
                self.last_error = msg
                log.error(msg)
                fallback = self._fallback(version) if self._bundle is None else None
                if fallback is None:
                    return ReloadResult("refused", previous, previous, msg)
                version, msg = fallback, f"{msg}; serving the last good version {fallback} instead"
            else:
                self._refused = self.last_error = None
                msg = f"serving {version} (was {previous or 'nothing'})"
            load_ms = (time.perf_counter() - t0) * 1000.0
            msg = f"{msg}, loaded in {load_ms:.0f} ms"
            log.info(msg)
            if self.on_swap is not None:
                self.on_swap(self._bundle)
            return ReloadResult("swapped", version, previous, msg, load_ms)

    def _swap_in(self, version: str, vdir: Path) -> None:
        new = self.build(version, vdir)
        with self._mutation_lock:
            self._replay_delta(new)
            self._bundle = new
        try:   # remember it for a start-up whose LATEST is refused (best effort)
            (self.serving_dir / LAST_GOOD_FILE).write_text(version + "\n")
        except OSError as exc:
            log.warning("cannot record %s: %s", LAST_GOOD_FILE, exc)

    @staticmethod
    def _manifest_mtime(vdir: Path) -> int:
        try:
            return (vdir / "manifest.json").stat().st_mtime_ns
        except OSError:
            return 0

    def _fallback(self, refused: str) -> str | None:
        """Nothing is serving and LATEST's version was refused: load LAST_GOOD, else the newest other versions."""
        last_good = (self.serving_dir / LAST_GOOD_FILE)
        first = last_good.read_text().strip() if last_good.is_file() else ""
        others = sorted((p for p in self.serving_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
                         and (p / "manifest.json").is_file()), key=self._manifest_mtime, reverse=True)
        names = list(dict.fromkeys([first, *(p.name for p in others)]))
        for name in [n for n in names if n and n != refused and "/" not in n][: self.fallback_versions]:
            vdir = self.serving_dir / name
            if not vdir.is_dir() or name.startswith("."):
                continue
            try:
                self._swap_in(name, vdir)
                return name
            except Exception as exc:
                log.error("fallback bundle %s refused too: %s: %s", name, type(exc).__name__, exc)
        return None

    # ---- LATEST watcher ------------------------------------------------------------------
    def start_watcher(self, interval_s: float) -> None:
        """Poll LATEST every `interval_s` seconds and reload when it names a new version."""
        if self._watcher is not None or interval_s <= 0:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    latest = read_latest(self.serving_dir)
                    current = self._bundle
                    if latest and (current is None or latest != current.version) and not self._still_refused(latest):
                        self.reload()
                except Exception:  # the watcher must never die
                    log.exception("LATEST watcher iteration failed")

        self._watcher = threading.Thread(target=loop, name="pixelmatch-latest-watcher", daemon=True)
        self._watcher.start()

    def _still_refused(self, latest: str) -> bool:
        """The watcher's LATEST names the version already refused, unchanged since: do not re-hash it."""
        refused = self._refused
        return (refused is not None and refused[0] == latest
                and refused[1] == self._manifest_mtime(self.serving_dir / latest))

    def stop_watcher(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
            self._watcher = None

    # ---- live catalogue changes ----------------------------------------------------------
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
        if state.added or state.deleted:
            log.info("replayed delta log: %d live items, %d deletions", len(state.added), len(state.deleted))

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
