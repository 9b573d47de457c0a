"""GET /recommend/{user_id}: the bundle's hybrid recommender, with online user features when a store is set.

The answer lists the recommendations under ``results`` (the key of every search answer) and, for one release,
the same list under the deprecated ``items``. When the feature store does not answer in time the recommender
answers content-only (``feature_store: unavailable``, ``fallback: content_only``).
(No ``from __future__ import annotations``: FastAPI reads the route signature, and its ``top_k`` type is local.)
"""
import math
import time
from typing import Any

from fastapi import APIRouter, HTTPException, Query

from serving.bundle_loading import ServingBundle
from serving.deps import BundleDep, FeaturesDep, MetricsDep, Settings
from serving.feature_store import FeatureStoreAdapter
from serving.monitoring import Metrics
from serving.routes.common import image_url
from serving.schemas import RecommendationOut, RecommendResponseOut, top_k_type

MAX_USER_ID_CHARS = 128
MAX_CONTEXT_IDS = 50


def build_router(s: Settings) -> APIRouter:
    router = APIRouter(tags=["recommend"])
    TopK = top_k_type(s.top_k_max)  # noqa: N806 (a type)

    @router.get("/recommend/{user_id}", response_model=RecommendResponseOut)
    def recommend(user_id: str, bundle: BundleDep, metrics: MetricsDep, features: FeaturesDep,
                  top_k: TopK = Query(s.recommend_top_k_default),
                  context: str = Query("", description="comma-separated item ids the user just viewed")
                  ) -> RecommendResponseOut:
        t0 = time.perf_counter()
        if len(user_id) > MAX_USER_ID_CHARS:
            raise HTTPException(422, [f"user_id: at most {MAX_USER_ID_CHARS} characters"])
        if bundle.recommender is None:
            raise HTTPException(503, f"bundle {bundle.version} has no recommender")
        ctx = [c for c in (x.strip() for x in context.split(",")[:MAX_CONTEXT_IDS]) if c and c in bundle.items]
        user_features, fs_status = _user_features(user_id, features, s, metrics)
        resp = _recommend(bundle, metrics, user_id, top_k, ctx, user_features, s.top_k_max)
        out = _recommendations_out(bundle, getattr(resp, "items", resp), top_k)
        fallback = getattr(resp, "fallback", None)
        if fs_status == "unavailable" and not fallback:
            fallback = "content_only"
        return RecommendResponseOut(user_id=user_id, results=out, items=out, fallback=fallback,
                                    feature_store=fs_status, latency_ms=round((time.perf_counter() - t0) * 1000.0, 3),
                                    bundle_version=bundle.version)

    return router


def _user_features(user_id: str, features: FeatureStoreAdapter, s: Settings, metrics: Metrics) -> tuple[Any, str]:
    """(features for the recommender, store status); an unavailable store -> ``{"available": False}``."""
    with metrics.stage("feature_store"):
        user_features, fs_status = features.get_user_features(user_id)
    if fs_status == "unavailable":
        user_features = {"available": False}      # the recommender then answers content-only
    elif user_features:
        rename = dict(s.config.serving.feature_store.rename)
        user_features = {rename.get(k, k): v for k, v in user_features.items()}
    return user_features, fs_status


def _recommend(bundle: ServingBundle, metrics: Metrics, user_id: str, top_k: int, ctx: list[str],
               user_features: Any, top_k_max: int) -> Any:
    with metrics.stage("recommend"), bundle.lock.write():
        try:
            # ask for extra items so that live-deleted ones can be dropped without returning fewer than top_k
            want = min(top_k + len(bundle.live_deleted), top_k_max)
            return bundle.recommender.recommend(user_id, top_k=want, context=ctx, user_features=user_features)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc


def _recommendations_out(bundle: ServingBundle, recs: list[Any], top_k: int) -> list[RecommendationOut]:
    """Recommender answers -> API items: unknown (deleted) items and non-finite scores dropped, at most top_k."""
    return [RecommendationOut(item_id=str(r.item_id), title=bundle.items[str(r.item_id)].get("title") or "",
                              score=float(r.score), image_url=image_url(bundle, str(r.item_id)),
                              path=str(getattr(r, "path", "") or "unknown"))
            for r in recs if str(r.item_id) in bundle.items and math.isfinite(float(r.score))][:top_k]
