"""Optional online user features from the Feast feature store, behind a timeout.

The recommender works without them (content + collaborative signals from the bundle), so this
adapter never raises: it answers `(features, status)` with status
  * "ok"           features fetched,
  * "unavailable"  the store could not be opened, errored or did not answer within `timeout_s`,
  * "disabled"     no feature repository configured.
Calls run on a small private thread pool so a hung store cannot block a request past the timeout.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

log = logging.getLogger("pixelmatch.serving")


class FeatureStoreAdapter:
    def __init__(self, repo_path: str | Path | None, features: list[str], timeout_s: float = 0.2,
                 entity_key: str = "user_id") -> None:
        self.repo_path = Path(repo_path) if repo_path else None
        self.features = list(features)
        self.timeout_s = float(timeout_s)
        self.entity_key = entity_key
        self._store: Any = None
        self._store_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="feast")

    @property
    def enabled(self) -> bool:
        return self.repo_path is not None and bool(self.features)

    def _open(self) -> Any:
        with self._store_lock:
            if self._store is None:
                import feast

                self._store = feast.FeatureStore(repo_path=str(self.repo_path))
            return self._store

    def _fetch(self, user_id: str) -> dict[str, Any]:
        store = self._open()
        resp = store.get_online_features(features=self.features, entity_rows=[{self.entity_key: user_id}])
        row = resp.to_dict()
        out = {k.split("__")[-1]: v[0] for k, v in row.items() if k != self.entity_key and v}
        return {k: v for k, v in out.items() if v is not None}

    def get_user_features(self, user_id: str) -> tuple[dict[str, Any] | None, str]:
        if not self.enabled:
            return None, "disabled"
        if not self.repo_path.is_dir():
            return None, "unavailable"
        future = self._pool.submit(self._fetch, user_id)
        try:
            return future.result(timeout=self.timeout_s), "ok"
        except FutureTimeout:
            future.cancel()
            log.warning("feature store did not answer within %.0f ms; serving content-only", self.timeout_s * 1000)
            return None, "unavailable"
        except Exception as exc:  # any store failure degrades to content-only, never a 500
            log.warning("feature store error (%s: %s); serving content-only", type(exc).__name__, exc)
            return None, "unavailable"

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
