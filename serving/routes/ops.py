"""The web page (GET /) and the operations routes: /health, /ready, /metrics.

/health and /ready are async: they are answered on the event loop even when every worker thread is busy searching.
"""
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse, Response

from serving.deps import ManagerDep, MetricsDep, SettingsDep
from serving.monitoring import CONTENT_TYPE_LATEST
from serving.routes.common import finite
from serving.schemas import ReadyResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# /ready shows these manifest keys only (no absolute paths, MLMD or run ids).
PUBLIC_MANIFEST_KEYS = ("version", "created_at", "data_hash", "blessing", "metrics")

router = APIRouter(tags=["ops"])


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


@router.get("/health")
async def health() -> dict:
    return {"status": "ok"}


@router.get("/ready", response_model=ReadyResponse, responses={503: {"description": "no bundle loaded"}})
async def ready(manager: ManagerDep, metrics: MetricsDep, settings: SettingsDep) -> Any:
    bundle = manager.bundle
    body = ReadyResponse(
        ready=bundle is not None, version=bundle.version if bundle else None,
        manifest={k: finite(bundle.manifest[k]) for k in PUBLIC_MANIFEST_KEYS if k in bundle.manifest}
        if bundle else None,
        loaded_at=bundle.loaded_at if bundle else None,
        live_items_added=len(bundle.live_added) if bundle else 0,
        live_items_deleted=len(bundle.live_deleted) if bundle else 0,
        latency=metrics.monitor.percentiles(), text_backend=settings.text_backend)
    if bundle is None:
        return JSONResponse(status_code=503, content={**body.dict(), "error": settings.public(manager.last_error)})
    return body


@router.get("/metrics")
def prometheus_metrics(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
