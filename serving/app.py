"""PixelMatch HTTP API + web page (FastAPI): the app factory.

`create_app(serving_dir)` loads the bundle `SERVING_DIR/LATEST` names and serves it; `serve()` runs
uvicorn. The routes live in `serving/routes/` (one APIRouter per resource: search, look, recommend, items,
admin, ops, events), their dependencies (the current bundle, settings, metrics, the admin token) in `serving/deps.py`.
The API reads SERVING_DIR only (plus the optional Feast online store). Environment:

  PIXELMATCH_ADMIN_TOKEN      bearer token for /admin/*; unset -> admin endpoints answer 403
  PIXELMATCH_TF_SERVING_URL   e.g. http://tf-serving:8501: query embeddings come from TF Serving
  PIXELMATCH_FEATURE_REPO     Feast repository path (overrides params serving.feature_store.repo_path)

Untrusted input never reaches a file path or a 500: `serving.guard.RequestGuard` checks the admin
token and caps every body (bytes counted as received) before anything is parsed; images are decoded by
`modules.data.images.load_image` behind a semaphore (pixel cap checked from the header); engine
ValueError/KeyError become 422/404 and TF Serving failures 503. Threat model: docs/security.md.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, ORJSONResponse
from fastapi.staticfiles import StaticFiles

from modules.config import load_params
from modules.settings import load_settings
from serving.bundle_loading import BundleLoader, ServingBundle, load_components
from serving.bundle_manager import BundleManager
from serving.deps import Settings
from serving.feature_store import FeatureStoreAdapter
from serving.guard import RequestGuard
from serving.monitoring import Metrics, RequestMetrics
from serving.personalise import warm_in_background
from serving.routes import admin, events, items, look, ops, recommend, search
from serving.routes.common import error, validation_messages
from serving.tf_serving_client import TFServingError, plug_tf_serving

log = logging.getLogger("pixelmatch.serving")
UPLOAD_PATHS = ("/search/image", "/search/multimodal", "/search/look")
# Multipart framing around the file; the cap applies to the file itself.
MULTIPART_OVERHEAD = 64 * 1024


def create_app(serving_dir: str | Path, params: dict | None = None, *, loader: BundleLoader | None = None,
               watch_interval_s: float | None = None) -> FastAPI:
    """Build the API for `serving_dir`. The bundle is loaded here (a missing/bad bundle leaves the app
    up and /ready at 503); the LATEST watcher starts with the app and stops at shutdown."""
    params = params if params is not None else load_params()
    s = Settings.from_params(serving_dir, params, watch_interval_s)
    limit_math_threads(s.config.serving.math_threads)
    limit_malloc_arenas(s.config.serving.malloc_arenas)
    metrics = Metrics(window=s.config.serving.latency_window)
    fs_cfg = s.config.serving.feature_store
    features = FeatureStoreAdapter(
        os.environ.get("PIXELMATCH_FEATURE_REPO") or fs_cfg.repo_path, features=list(fs_cfg.features),
        timeout_s=fs_cfg.timeout_ms / 1000.0, lookup=fs_cfg.lookup, write_timeout_s=fs_cfg.write_timeout_ms / 1000.0)

    def on_swap(bundle: ServingBundle) -> None:
        metrics.bundle_loaded.set(bundle.loaded_at)
        warm_in_background(bundle)   # the user tower of personalised search, before the first request asks

    tf_cfg = s.config.serving.tf_serving
    manager = BundleManager(
        serving_dir, params, loader=loader or load_components, on_swap=on_swap,
        prepare=(lambda b: plug_tf_serving(b, s.tf_url, tf_cfg)) if s.tf_url else None)
    first = manager.reload()
    metrics.reloads.labels(outcome=first.outcome).inc()

    app = FastAPI(
        default_response_class=ORJSONResponse,   # orjson: cheaper encoding of the result lists
        title="PixelMatch",
        version="0.1.0",
        description="Multimodal product search and recommendations. Text queries longer than "
        f"{s.max_query_chars} characters are truncated to {s.max_query_chars} (response: query_truncated=true). "
        f"Uploads are capped at {s.upload_mb} MB and {s.max_pixels} pixels.",
    )
    look_service = look.LookService(params)
    app.state.settings, app.state.params = s, params
    app.state.manager, app.state.metrics, app.state.features, app.state.look = manager, metrics, features, look_service

    @app.on_event("startup")
    def _start() -> None:
        limit_request_threads(s.config.serving.request_threads)
        manager.start_watcher(s.watch_interval_s)
        look_service.start_warm_up()
        features.start_warm_up()

    @app.on_event("shutdown")
    def _stop() -> None:
        manager.stop_watcher()
        features.close()

    _add_middleware(app, s, metrics)
    _add_exception_handlers(app)
    app.mount("/static", StaticFiles(directory=ops.STATIC_DIR), name="static")
    for router in (search.build_router(s), look.build_router(s, look_service), recommend.build_router(s),
                   events.build_router(s), items.router, ops.router, admin.router):
        app.include_router(router)
    return app


def limit_request_threads(threads: int) -> None:
    """Cap the threads that run this process's sync routes (anyio's default limiter: 40) at ``threads``
    (``serving.request_threads``; 0 leaves 40). Call from the running event loop. Each request thread holds its own
    tokenizer copy and malloc arena, and on two cores 40 threads per worker only queue behind each other."""
    if threads > 0:
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = int(threads)


def limit_malloc_arenas(arenas: int) -> bool:
    """Cap glibc's malloc arenas for this process at ``arenas`` (``serving.malloc_arenas``; 0 leaves glibc's 8 per
    core). Each of the request threads otherwise gets an arena of its own, and memory freed in one is not reused by
    another, so RSS grew by ~150 MB per worker under 50 clients. Returns whether glibc took it (False elsewhere)."""
    if arenas <= 0:
        return False
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, int(arenas)))
    except (OSError, AttributeError):   # not glibc (musl, macOS): nothing to cap
        return False


_M_ARENA_MAX = -8   # glibc's malloc.h


def limit_math_threads(threads: int) -> Any:
    """Cap the BLAS and OpenMP thread pools of this process at ``threads`` (``serving.math_threads``; 0 leaves the
    libraries' default of one per core). Requests already run in parallel (threads and ``--workers`` processes),
    and a search's matrix products are small (a few hundred rows): a second BLAS thread per process only adds a
    hand-off, which on busy cores turned a 0.04 ms product into ~4 ms of waiting (docs/benchmark_results.md).
    The limit is process-wide for OpenBLAS; OpenMP's applies to the calling thread's pool. Returns the
    ``threadpoolctl`` limiter (``.restore_original_limits()`` undoes the BLAS/OpenMP part), or None for 0."""
    if threads <= 0:
        return None
    import faiss
    from threadpoolctl import threadpool_limits

    limiter = threadpool_limits(limits=int(threads))
    faiss.omp_set_num_threads(int(threads))
    return limiter


def _add_middleware(app: FastAPI, s: Settings, metrics: Metrics) -> None:
    """Metrics per route; outermost, the guard (admin token, body caps, security headers)."""
    app.add_middleware(RequestMetrics, metrics=metrics)
    limits = {p: s.max_upload + MULTIPART_OVERHEAD for p in UPLOAD_PATHS}
    limits["/admin/items"] = int(s.config.serving.max_admin_body_mb * 1024 * 1024)
    app.add_middleware(RequestGuard, limits=limits, default_limit=int(s.config.serving.max_json_body_kb * 1024),
                       on_reject=lambda path, status: metrics.observe_request("guard", "ANY", status, 0.0))


def _add_exception_handlers(app: FastAPI) -> None:
    """TF Serving down -> 503; validation -> 422 with ``["field: message"]``; anything else -> 500, logged."""
    @app.exception_handler(TFServingError)
    async def _on_tf_serving(request: Request, exc: TFServingError) -> JSONResponse:
        log.error("TF Serving failed on %s: %s", request.url.path, exc)
        return error(503, "the query encoder (TF Serving) is unavailable; retry shortly")

    @app.exception_handler(RequestValidationError)
    async def _on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, validation_messages(exc.errors()))

    @app.exception_handler(Exception)
    async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error(500, f"internal error ({type(exc).__name__}); the server keeps running")


def app_from_env() -> FastAPI:
    """uvicorn factory for multi-worker serving: each worker process loads SERVING_DIR itself."""
    return create_app(os.environ["PIXELMATCH_SERVING_DIR"])


def serve(serving_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Run the API with uvicorn. ``workers`` > 1 starts that many processes, each with its own bundle (the FAISS
    indexes are memory-mapped read-only, so their pages are shared); requests within a process run in parallel
    threads. A live add/delete reaches only the worker that took it until the next bundle reload."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # uvicorn's 5 s default let an overloaded worker close a keep-alive connection the client was reusing
    cfg = load_settings().serving
    opts = {"host": host, "port": port, "log_level": "info", "access_log": False, "timeout_keep_alive": cfg.keep_alive_s}
    if workers <= 1:
        uvicorn.run(create_app(serving_dir), **opts)
        return
    os.environ["PIXELMATCH_SERVING_DIR"] = str(Path(serving_dir).resolve())
    if cfg.math_threads > 0:   # fresh worker processes: OpenMP reads this at start-up, for every thread's pool
        os.environ.setdefault("OMP_NUM_THREADS", str(cfg.math_threads))
    # uvicorn's supervisor pings each worker and replaces one that does not answer within the health-check
    # timeout; a worker still loading a large bundle on busy cores can miss its 5 s default and be killed over and over
    uvicorn.run("serving.app:app_from_env", factory=True, workers=workers,
                timeout_worker_healthcheck=cfg.worker_healthcheck_s, **opts)
