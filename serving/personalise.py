"""Personalised search at request time: ``user_id`` on /search/text, /search/image and /search/multimodal.

The bundle's two-tower SavedModel (``model/two_tower/1``, named by the recommender's ``two_tower_dir``) embeds the
user (``modules.search.personalise.UserTower``) from the bundle's snapshot history plus the fresh online features
(``session_items``: events posted to ``POST /events`` since the last publish; ``recent_items`` for a user only the
store knows). The engine gets ``context={"two_tower": UserScores}``, so only the candidates are scored.

A ``user_id`` that neither the bundle nor the online store knows (or a bundle without a two-tower) is not an
error: the answer is the ordinary one, with ``explain.two_tower`` null. The tower (the SavedModel plus the catalog's
items embedded once) is built in a background thread as soon as a bundle is swapped in (``warm_in_background``), so
the first personalised request does not pay for it (one arriving earlier waits for that build); it is kept with the
bundle. Items added live after that score 0 (the tower does not know them) until the next bundle.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from serving.bundle_loading import ServingBundle
from serving.feature_store import FeatureStoreAdapter
from serving.monitoring import Metrics

log = logging.getLogger("pixelmatch.serving")
_LOCK = threading.Lock()
_NO_TOWER = object()          # cached: this bundle cannot personalise


def bundle_tower(bundle: ServingBundle) -> Any | None:
    """The bundle's ``UserTower`` (built once, kept on the bundle), or None when it has no two-tower model."""
    cached = bundle.__dict__.get("_user_tower")
    if cached is None:
        with _LOCK:
            cached = bundle.__dict__.get("_user_tower")
            if cached is None:
                cached = bundle.__dict__["_user_tower"] = _build_tower(bundle)
    return None if cached is _NO_TOWER else cached


def warm_in_background(bundle: ServingBundle) -> threading.Thread:
    """Build the bundle's tower now, off the request path: a daemon thread, also kept on the bundle as
    ``_tower_thread`` so a caller may wait for it."""
    def build() -> None:
        t0 = time.perf_counter()
        tower = bundle_tower(bundle)
        if tower is not None:
            log.info("bundle %s: personalised search ready (%d items) in %.1f s", bundle.version,
                     len(tower.item_ids), time.perf_counter() - t0)

    thread = threading.Thread(target=build, name=f"user-tower-{bundle.version}", daemon=True)
    bundle.__dict__["_tower_thread"] = thread
    thread.start()
    return thread


def _build_tower(bundle: ServingBundle) -> Any:
    rec = bundle.recommender
    rel = getattr(rec, "two_tower_dir", None)
    if rec is None or not rel or not (bundle.path / rel).is_dir():
        return _NO_TOWER
    from modules.search.personalise import UserTower

    try:
        with bundle.lock.read():
            return UserTower.from_engine(bundle.engine, bundle.path / rel)
    except (OSError, ValueError, KeyError) as exc:
        log.warning("bundle %s: no personalised search (%s: %s)", bundle.version, type(exc).__name__, exc)
        return _NO_TOWER


def snapshot_history(bundle: ServingBundle, user_id: str) -> list[str]:
    """The user's training-window items, oldest first, as the bundle's recommender holds them ([] if unknown)."""
    rec = bundle.recommender
    seq = rec.histories.sequences.get(user_id) if rec is not None else None
    return [] if seq is None else [rec.item_ids[int(i)] for i in seq]


def user_context(bundle: ServingBundle, features: FeatureStoreAdapter, metrics: Metrics, user_id: str | None
                 ) -> dict[str, Any] | None:
    """The engine context of a personalised search (``{"two_tower": UserScores}``), or None: no ``user_id``, a bundle
    without a two-tower, or a user with no known item in their history."""
    if not user_id:
        return None
    tower = bundle_tower(bundle)
    if tower is None:
        return None
    from modules.search.personalise import user_history

    with metrics.stage("feature_store"):
        online, _status = features.get_user_features(user_id)    # None when disabled or unavailable
    with metrics.stage("user_tower"):
        scores = tower.scores(user_id, user_history(snapshot_history(bundle, user_id), online))
    return {"two_tower": scores} if scores is not None else None
