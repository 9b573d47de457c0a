"""FastAPI dependencies of the PixelMatch API, and the per-app settings they hand to the routes.

`create_app` builds one :class:`Settings` from params and keeps it, the bundle manager, the metrics and the
feature-store adapter on ``app.state``; routes ask for them with the ``*Dep`` annotations below instead of
reaching for globals:

    def similar(item_id: str, bundle: BundleDep, metrics: MetricsDep) -> ...

``BundleDep`` is the bundle being served (503 with the load error while there is none). FastAPI resolves
dependencies before it validates the route's own parameters, so with no bundle loaded a data route answers 503
whatever the request holds. ``require_admin`` is the admin-token check for /admin/* (the second line of defence:
``serving.guard.RequestGuard`` already refused a request without the token).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from modules.settings import Settings as TypedSettings
from modules.settings import load_settings
from serving.bundle_loading import ServingBundle
from serving.bundle_manager import BundleManager
from serving.feature_store import FeatureStoreAdapter
from serving.guard import admin_problem
from serving.monitoring import Metrics


@dataclass(frozen=True)
class Settings:
    """The limits and defaults the routes need, read once from params when the app is created."""

    serving_dir: str | Path
    params: dict
    config: TypedSettings = field(repr=False)  # load_settings(params): every section, typed and checked
    max_upload: int                         # bytes of one uploaded image
    max_pixels: int
    max_attributes: int
    max_b64: int                            # characters of an admin item's image_base64
    top_k_max: int
    recommend_top_k_default: int
    max_query_chars: int
    watch_interval_s: float
    tf_url: str                             # PIXELMATCH_TF_SERVING_URL; empty: in-process query encoder

    @classmethod
    def from_params(cls, serving_dir: str | Path, params: dict, watch_interval_s: float | None = None) -> Settings:
        """Limits from ``load_settings(params)``: params over params.yaml, checked (ValueError names a bad key)."""
        typed = load_settings(params)
        limits = typed.serving
        return cls(
            serving_dir=serving_dir, params=params, config=typed,
            max_upload=int(limits.max_upload_mb * 1024 * 1024),
            max_pixels=limits.max_image_pixels,
            max_attributes=limits.max_item_attributes,
            max_b64=int(limits.max_image_base64_mb * 1024 * 1024),
            top_k_max=limits.top_k_max,
            recommend_top_k_default=limits.recommend_top_k_default,
            max_query_chars=typed.retrieval.max_query_chars,
            watch_interval_s=limits.watch_interval_s if watch_interval_s is None else watch_interval_s,
            tf_url=os.environ.get("PIXELMATCH_TF_SERVING_URL", "").strip(),
        )

    @property
    def text_backend(self) -> str:
        return "tf_serving" if self.tf_url else "in_process"

    @property
    def upload_mb(self) -> float | int:
        """``serving.max_upload_mb`` as messages quote it (a whole number without ``.0``)."""
        return quoted(self.config.serving.max_upload_mb)

    @property
    def b64_mb(self) -> float | int:
        """``serving.max_image_base64_mb`` as messages quote it."""
        return quoted(self.config.serving.max_image_base64_mb)

    def public(self, message: str | None) -> str | None:
        """A message without the server's absolute paths (shown to clients)."""
        if not message:
            return message
        for root in sorted({str(Path(self.serving_dir).resolve()), str(self.serving_dir)}, key=len, reverse=True):
            message = message.replace(root, "SERVING_DIR")
        return message


def quoted(value: float) -> float | int:
    """A typed float setting as params.yaml most likely wrote it: ``10.0`` -> ``10``, ``0.5`` stays."""
    return int(value) if float(value).is_integer() else value


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_manager(request: Request) -> BundleManager:
    return request.app.state.manager


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_features(request: Request) -> FeatureStoreAdapter:
    return request.app.state.features


SettingsDep = Annotated[Settings, Depends(get_settings)]
ManagerDep = Annotated[BundleManager, Depends(get_manager)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
FeaturesDep = Annotated[FeatureStoreAdapter, Depends(get_features)]


async def current_bundle(manager: ManagerDep, settings: SettingsDep) -> ServingBundle:
    """The bundle being served; 503 (with the load error, paths hidden) while none is loaded."""
    bundle = manager.bundle
    if bundle is None:
        raise HTTPException(503, f"no bundle loaded: {settings.public(manager.last_error) or 'nothing pushed yet'}")
    return bundle


BundleDep = Annotated[ServingBundle, Depends(current_bundle)]


async def require_admin(request: Request) -> None:
    """The admin bearer token (PIXELMATCH_ADMIN_TOKEN): 403 when the server has none, 401 when wrong."""
    problem = admin_problem(request.headers)
    if problem is not None:
        raise HTTPException(problem[0], problem[1], headers={"WWW-Authenticate": "Bearer"})
