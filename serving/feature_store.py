"""Online user features in the Feast feature store: read at request time, written by ``POST /events``.

Reading (``/recommend``) never raises: :meth:`FeatureStoreAdapter.get_user_features` answers
``(features, status)`` with status
  * "ok"           features fetched (``{}`` for a user the store does not know),
  * "unavailable"  the store could not be opened, errored or did not answer within ``timeout_s``,
  * "disabled"     lookup off: ``lookup: off``, no features configured, or ``lookup: auto`` and the repository
                   holds no materialised store (no registry file: FeastPublisher never ran there).
Writing (``/events``) raises :class:`FeatureStoreWriteError` whenever the event may not have been stored, so the
route answers 503 and the client retries (at-least-once: a write that timed out may still land).
Calls run on a small private thread pool so a hung store cannot block a request past its timeout. One lock
serialises the read-modify-write of a row within this process (SQLite, the default online store, is one file;
several server processes sharing it can interleave two events of the same user, see docs/architecture.md).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import yaml

from modules.recommend.online_features import PUSH_SOURCE, ROW_FIELDS, VIEW

log = logging.getLogger("pixelmatch.serving")
LOOKUP_MODES = ("auto", "on", "off")


class FeatureStoreWriteError(RuntimeError):
    """The event could not be written to the online store (the API answers 503)."""


class FeatureStoreAdapter:
    def __init__(self, repo_path: str | Path | None, features: list[str], timeout_s: float, *,
                 lookup: str, write_timeout_s: float | None = None, entity_key: str = "user_id") -> None:
        if lookup not in LOOKUP_MODES:
            raise ValueError(f"serving.feature_store.lookup: {lookup!r} is not one of {', '.join(LOOKUP_MODES)}")
        self.repo_path = Path(repo_path) if repo_path else None
        self.features = list(features)
        self.lookup = lookup
        self.timeout_s = float(timeout_s)
        self.write_timeout_s = float(write_timeout_s if write_timeout_s is not None else timeout_s)
        self.entity_key = entity_key
        self._store: Any = None
        self._store_lock = threading.Lock()
        self._row_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="feast")

    # ------------------------------------------------------------------------------------------------ state
    def materialised(self) -> bool:
        """True when the repository has a registry file (``feast apply`` ran there, as FeastPublisher does)."""
        if self.repo_path is None or not (self.repo_path / "feature_store.yaml").is_file():
            return False
        try:
            cfg = yaml.safe_load((self.repo_path / "feature_store.yaml").read_text()) or {}
        except (OSError, yaml.YAMLError):
            return False
        registry = cfg.get("registry")
        registry = registry.get("path") if isinstance(registry, Mapping) else registry
        return isinstance(registry, str) and (self.repo_path / registry).is_file()

    @property
    def enabled(self) -> bool:
        """Whether ``/recommend`` looks features up (``lookup: auto`` checks the registry file on each call)."""
        if self.repo_path is None or not self.features or self.lookup == "off":
            return False
        return self.lookup == "on" or self.materialised()

    def _open(self) -> Any:
        with self._store_lock:
            if self._store is None:
                import feast

                self._store = feast.FeatureStore(repo_path=str(self.repo_path))
            return self._store

    def _call(self, fn: Callable[[], Any], timeout_s: float) -> Any:
        future = self._pool.submit(fn)
        try:
            return future.result(timeout=timeout_s)
        except FutureTimeout:
            future.cancel()
            raise

    # ------------------------------------------------------------------------------------------------ read
    def _online_row(self, user_id: str, features: list[str]) -> dict[str, Any]:
        resp = self._open().get_online_features(features=features, entity_rows=[{self.entity_key: user_id}])
        row = resp.to_dict()
        out = {k.split("__")[-1].split(":")[-1]: v[0] for k, v in row.items() if k != self.entity_key and v}
        return {k: v for k, v in out.items() if v is not None}

    def _fetch(self, user_id: str) -> dict[str, Any]:
        return self._online_row(user_id, self.features)

    def get_user_features(self, user_id: str) -> tuple[dict[str, Any] | None, str]:
        if not self.enabled:
            return None, "disabled"
        if not self.repo_path.is_dir():
            return None, "unavailable"
        try:
            return self._call(lambda: self._fetch(user_id), self.timeout_s), "ok"
        except FutureTimeout:
            log.warning("feature store did not answer within %.0f ms; serving content-only", self.timeout_s * 1000)
            return None, "unavailable"
        except Exception as exc:  # any store failure degrades to content-only, never a 500
            log.warning("feature store error (%s: %s); serving content-only", type(exc).__name__, exc)
            return None, "unavailable"

    # ------------------------------------------------------------------------------------------------ write
    def update_user(self, user_id: str, update: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Read the user's whole row, apply ``update`` and push the result online (``PUSH_SOURCE``); returns the
        written row. Raises FeatureStoreWriteError when the store is missing, fails or misses the write timeout
        (``update`` must not raise: the caller validates the event first)."""
        if self.repo_path is None or not self.materialised():
            raise FeatureStoreWriteError("no online feature store: the feature repository has not been "
                                         "materialised (run the pipeline so that FeastPublisher fills it)")

        def read_modify_write() -> dict[str, Any]:
            import pandas as pd

            with self._row_lock:
                row = self._online_row(user_id, [f"{VIEW}:{f}" for f in ROW_FIELDS])
                new = update(row)
                frame = pd.DataFrame([{self.entity_key: user_id, **new,
                                       "event_timestamp": pd.Timestamp.now(tz="UTC")}])
                self._open().push(PUSH_SOURCE, frame)
                return new

        try:
            return self._call(read_modify_write, self.write_timeout_s)
        except FutureTimeout as exc:
            raise FeatureStoreWriteError(f"the online store did not confirm the write within "
                                         f"{self.write_timeout_s * 1000:.0f} ms") from exc
        except Exception as exc:
            log.error("feature store write failed (%s: %s)", type(exc).__name__, exc)
            raise FeatureStoreWriteError(f"the online store could not be written ({type(exc).__name__})") from exc

    def start_warm_up(self) -> None:
        """Open the store and read one row in the background (the first read loads the registry), so the first
        request does not pay for it; errors are left to the requests to report."""
        if self.enabled:
            self._pool.submit(lambda: self._online_row("", self.features[:1]))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
