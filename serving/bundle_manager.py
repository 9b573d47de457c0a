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

Loading one version into a `ServingBundle` is serving/bundle_loading.py; live adds/deletes and the delta-log
replay are serving/live_catalog.py (mixed into `BundleManager`).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modules.bundle import BundleError, read_latest
from modules.settings import load_settings
from serving.bundle_loading import BundleLoader, ServingBundle, build_bundle, load_components
from serving.delta import DeltaLog
from serving.live_catalog import LiveCatalogMixin

log = logging.getLogger("pixelmatch.serving")

LAST_GOOD_FILE = "LAST_GOOD"


@dataclass(frozen=True)
class ReloadResult:
    outcome: str                 # swapped | unchanged | refused
    version: str | None          # the version serving after the call
    previous_version: str | None
    message: str
    load_ms: float | None = None


class BundleManager(LiveCatalogMixin):
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
        limits = load_settings(params).serving
        self.max_pixels = limits.max_image_pixels
        self.min_side = limits.min_image_side
        self.fallback_versions = limits.fallback_versions
        self._decode_slots = threading.BoundedSemaphore(limits.max_concurrent_decodes)
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
        return build_bundle(version, vdir, self.params, self.loader, self.prepare)

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
