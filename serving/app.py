"""PixelMatch HTTP API + web page (FastAPI).

`create_app(serving_dir)` loads the bundle `SERVING_DIR/LATEST` names and serves it; `serve()` runs
uvicorn. The API reads SERVING_DIR only (plus the optional Feast online store). Environment:

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
import math
import os
import time
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, ORJSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from modules.bundle import BundleError
from modules.config import load_params
from modules.data.images import ImageError
from serving.bundle_loading import BundleLoader, ServingBundle, load_components
from serving.bundle_manager import BundleManager
from serving.feature_store import FeatureStoreAdapter
from serving.guard import RequestGuard, admin_problem
from serving.look_route import register_look_route
from serving.monitoring import CONTENT_TYPE_LATEST, Metrics
from serving.schemas import (
    AddItemsRequest,
    AddItemsResponse,
    DeleteItemResponse,
    Explain,
    Filters,
    ItemOut,
    ReadyResponse,
    RecommendationOut,
    RecommendResponseOut,
    ReloadResponse,
    ResultOut,
    SearchResponseOut,
    TextSearchRequest,
    has_surrogate,
    valid_item_id,
)
from serving.tf_serving_client import TFServingClient, TFServingError, TFServingTextEncoder

log = logging.getLogger("pixelmatch.serving")
STATIC_DIR = Path(__file__).resolve().parent / "static"
UPLOAD_PATHS = ("/search/image", "/search/multimodal", "/search/look")
# /ready shows these manifest keys only (no absolute paths, MLMD or run ids).
PUBLIC_MANIFEST_KEYS = ("version", "created_at", "data_hash", "blessing", "metrics")
IMAGE_FORM_FIELDS = {"image", "top_k", "category", "price_min", "price_max", "gender"}
MULTIMODAL_FORM_FIELDS = IMAGE_FORM_FIELDS | {"text", "image_weight"}
# Multipart framing around the file; the cap applies to the file itself.
MULTIPART_OVERHEAD = 64 * 1024
ACCEPTED_UPLOAD_TYPES = ("image/", "application/octet-stream")


def _error(status: int, detail: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail})


def _finite(value: Any) -> Any:
    """Non-finite floats (a price parsed to inf) -> None, recursively: JSON has no inf/NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _validation_messages(errors: list[dict]) -> list[str]:
    out = []
    for e in errors:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path"))
        out.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
    return out


def _bundle_tokenizer(bundle: ServingBundle) -> tuple[Any, int | None]:
    """The tokenizer exported next to the text-encoder SavedModel (`model/text_encoder/<n>/assets.extra/tokenizer`)."""
    root = bundle.path / "model" / "text_encoder"
    versions = sorted((p for p in root.glob("*") if p.name.isdigit()), key=lambda p: int(p.name)) if root.is_dir() else []
    if not versions:
        return None, None
    tok_dir = versions[-1] / "assets.extra" / "tokenizer"
    if not tok_dir.is_dir():
        return None, None
    from transformers import AutoTokenizer

    max_len_file = tok_dir / "max_seq_length.txt"
    max_len = int(max_len_file.read_text().strip()) if max_len_file.is_file() else None
    return AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True), max_len


def _plug_tf_serving(bundle: ServingBundle, url: str, cfg: dict) -> None:
    """Replace the engine's in-process query encoder by TF Serving, tokenising with the bundle's tokenizer."""
    engine = bundle.engine
    local = getattr(engine, "text_encoder", None)
    if local is None:
        raise BundleError("the search engine has no text_encoder to replace with TF Serving")
    tokenizer, max_len = _bundle_tokenizer(bundle)
    if tokenizer is None:
        tokenizer = getattr(local, "tokenizer", None)
    if tokenizer is None:
        raise BundleError(f"{bundle.path}: no tokenizer for the TF Serving backend (model/text_encoder/1/assets.extra/tokenizer)")
    client = TFServingClient(url, model=cfg.get("model", "text_encoder"), signature=cfg.get("signature", "text_embedding"),
                             timeout_s=float(cfg.get("timeout_s", 2.0)))
    engine.text_encoder = TFServingTextEncoder(client, tokenizer, dim=local.dim,
                                               max_seq_length=max_len or getattr(local, "max_seq_length", 256),
                                               name=f"tf_serving:{getattr(local, 'name', 'text')}")


def create_app(serving_dir: str | Path, params: dict | None = None, *, loader: BundleLoader | None = None,
               watch_interval_s: float | None = None) -> FastAPI:
    """Build the API for `serving_dir`. The bundle is loaded here (a missing/bad bundle leaves the app
    up and /ready at 503); the LATEST watcher starts with the app and stops at shutdown."""
    params = params if params is not None else load_params()
    # keys a caller's params lack (e.g. a test's trimmed copy) come from params.yaml, never from inline defaults
    scfg = {**load_params().get("serving", {}), **params.get("serving", {})}
    max_upload = int(float(scfg.get("max_upload_mb", 10)) * 1024 * 1024)
    max_pixels = int(scfg.get("max_image_pixels", 40_000_000))
    max_attributes = int(scfg["max_item_attributes"])
    max_b64 = int(float(scfg["max_image_base64_mb"]) * 1024 * 1024)
    top_k_max = int(scfg.get("top_k_max", 100))
    max_query_chars = int(params.get("retrieval", {}).get("max_query_chars", 512))
    interval = float(scfg.get("watch_interval_s", 5.0)) if watch_interval_s is None else watch_interval_s
    metrics = Metrics(window=int(scfg.get("latency_window", 2000)))

    tf_url = os.environ.get("PIXELMATCH_TF_SERVING_URL", "").strip()
    text_backend = "tf_serving" if tf_url else "in_process"
    fs_cfg = scfg.get("feature_store", {}) or {}
    features = FeatureStoreAdapter(
        os.environ.get("PIXELMATCH_FEATURE_REPO") or fs_cfg.get("repo_path"),
        features=list(fs_cfg.get("features") or []),
        timeout_s=float(fs_cfg.get("timeout_ms", 200)) / 1000.0)

    feature_rename = dict(fs_cfg.get("rename") or {})

    def on_swap(bundle: ServingBundle) -> None:
        metrics.bundle_loaded.set(bundle.loaded_at)

    manager = BundleManager(
        serving_dir, params, loader=loader or load_components, on_swap=on_swap,
        prepare=(lambda b: _plug_tf_serving(b, tf_url, scfg.get("tf_serving", {}) or {})) if tf_url else None)
    first = manager.reload()
    metrics.reloads.labels(outcome=first.outcome).inc()

    app = FastAPI(
        default_response_class=ORJSONResponse,   # orjson: cheaper encoding of the result lists
        title="PixelMatch",
        version="0.1.0",
        description="Multimodal product search and recommendations. Text queries longer than "
        f"{max_query_chars} characters are truncated to {max_query_chars} (response: query_truncated=true). "
        f"Uploads are capped at {scfg.get('max_upload_mb', 10)} MB and {max_pixels} pixels.",
    )
    app.state.manager = manager
    app.state.metrics = metrics
    app.state.params = params

    @app.on_event("startup")
    def _start_watcher() -> None:
        manager.start_watcher(interval)

    @app.on_event("shutdown")
    def _stop_watcher() -> None:
        manager.stop_watcher()
        features.close()

    # ---- middleware: metrics; outermost, the guard (admin token, body caps, security headers) ---
    @app.middleware("http")
    async def _measure(request: Request, call_next):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        endpoint = getattr(route, "path", "unmatched")
        if endpoint not in ("/metrics", "/health", "/static"):
            metrics.observe_request(endpoint, request.method, response.status_code, time.perf_counter() - t0)
        return response

    limits = {p: max_upload + MULTIPART_OVERHEAD for p in UPLOAD_PATHS}
    limits["/admin/items"] = int(float(scfg["max_admin_body_mb"]) * 1024 * 1024)
    app.add_middleware(RequestGuard, limits=limits, default_limit=int(float(scfg["max_json_body_kb"]) * 1024),
                       on_reject=lambda path, status: metrics.observe_request("guard", "ANY", status, 0.0))

    def public(message: str | None) -> str | None:
        """A message without the server's absolute paths (shown to clients)."""
        if not message:
            return message
        for root in sorted({str(Path(serving_dir).resolve()), str(serving_dir)}, key=len, reverse=True):
            message = message.replace(root, "SERVING_DIR")
        return message

    @app.exception_handler(TFServingError)
    async def _on_tf_serving(request: Request, exc: TFServingError) -> JSONResponse:
        log.error("TF Serving failed on %s: %s", request.url.path, exc)
        return _error(503, "the query encoder (TF Serving) is unavailable; retry shortly")

    @app.exception_handler(RequestValidationError)
    async def _on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_messages(exc.errors()))

    @app.exception_handler(Exception)
    async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, f"internal error ({type(exc).__name__}); the server keeps running")

    # ---- helpers -------------------------------------------------------------------------------
    def current() -> ServingBundle:
        bundle = manager.bundle
        if bundle is None:
            raise HTTPException(503, f"no bundle loaded: {public(manager.last_error) or 'nothing pushed yet'}")
        return bundle

    def check_top_k(top_k: int) -> int:
        if not 1 <= top_k <= top_k_max:
            raise HTTPException(422, [f"top_k: must be between 1 and {top_k_max}, got {top_k}"])
        return top_k

    def image_url(bundle: ServingBundle, item_id: str) -> str | None:
        return f"/items/{item_id}/image" if item_id in bundle.image_files else None

    def results_out(bundle: ServingBundle, results: list[Any]) -> list[ResultOut]:
        out = []
        for r in results:
            iid = str(r.item_id)
            rec = bundle.items.get(iid)
            if rec is None:   # deleted between index and table (should not happen); never show it
                continue
            raw = dict(getattr(r, "explain", None) or {})
            filled = raw.pop("filled", None)
            explain = {k: (None if v is None else _finite(float(v))) for k, v in raw.items() if k in Explain.__fields__}
            if filled:
                explain["filled"] = {c: {"value": str(f["value"]), "confidence": _finite(float(f["confidence"])) or 0.0}
                                     for c, f in filled.items()}
            if not math.isfinite(float(r.score)):
                continue
            out.append(ResultOut(item_id=iid, title=rec.get("title") or "", score=float(r.score),
                                 image_url=image_url(bundle, iid), explain=Explain(**explain)))
        return out

    def run_search(bundle: ServingBundle, fn_name: str, *args: Any, **kwargs: Any) -> Any:
        with metrics.stage("search"), bundle.lock.read():
            try:
                return getattr(bundle.engine, fn_name)(*args, **kwargs)
            except KeyError as exc:
                raise HTTPException(404, f"unknown item: {exc.args[0] if exc.args else exc}") from exc
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from exc

    def search_response(bundle: ServingBundle, resp: Any, t0: float, truncated: bool = False) -> SearchResponseOut:
        return SearchResponseOut(
            results=results_out(bundle, resp.results), latency_ms=round((time.perf_counter() - t0) * 1000.0, 3),
            low_confidence=bool(getattr(resp, "low_confidence", False)),
            intents=_finite(dict(getattr(resp, "intents", None) or {})), query_truncated=truncated,
            bundle_version=bundle.version)

    async def read_upload(upload: UploadFile) -> Any:
        ctype = (upload.content_type or "").lower()
        if ctype and not ctype.startswith(ACCEPTED_UPLOAD_TYPES):
            raise HTTPException(415, f"image upload has content type {ctype!r}; send an image (image/jpeg, image/png, ...)")
        data = await upload.read(max_upload + 1)
        if len(data) > max_upload:
            raise HTTPException(413, f"image larger than {scfg.get('max_upload_mb', 10)} MB")
        if not data:
            raise HTTPException(400, "image file is empty (0 bytes)")
        with metrics.stage("decode_image"):
            try:
                return await run_in_threadpool(manager.decode_image, data)   # semaphore-bounded
            except ImageError as exc:
                raise HTTPException(400, f"bad image: {exc}") from exc

    async def check_form_keys(request: Request, allowed: set[str]) -> None:
        form = await request.form()
        unknown = sorted(set(form.keys()) - allowed)
        if unknown:
            raise HTTPException(422, [f"unknown form field(s) {unknown}; allowed: {sorted(allowed)}"])

    def form_filters(category: str | None, price_min: float | None, price_max: float | None,
                     gender: str | None) -> dict | None:
        try:
            return Filters(category=category, price_min=price_min, price_max=price_max, gender=gender).to_engine()
        except ValidationError as exc:
            raise HTTPException(422, _validation_messages(exc.errors())) from exc

    def require_admin(request: Request) -> None:
        """Second line of defence: RequestGuard already refused a request without the token."""
        problem = admin_problem(request.headers)
        if problem is not None:
            raise HTTPException(problem[0], problem[1], headers={"WWW-Authenticate": "Bearer"})

    # ---- page ----------------------------------------------------------------------------------
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    # ---- search --------------------------------------------------------------------------------
    @app.post("/search/text", response_model=SearchResponseOut, tags=["search"])
    def search_text(req: TextSearchRequest) -> SearchResponseOut:
        t0 = time.perf_counter()
        bundle = current()
        top_k = check_top_k(req.top_k)
        query = req.query
        truncated = len(query) > max_query_chars
        if truncated:
            query = query[:max_query_chars]
        filters = req.filters.to_engine() if req.filters else None
        resp = run_search(bundle, "search_text", query, top_k=top_k, retriever=req.retriever, filters=filters)
        return search_response(bundle, resp, t0, truncated)

    @app.post("/search/image", response_model=SearchResponseOut, tags=["search"])
    async def search_image(request: Request, image: UploadFile = File(...), top_k: int = Form(10),
                           category: str | None = Form(None), price_min: float | None = Form(None),
                           price_max: float | None = Form(None), gender: str | None = Form(None)) -> SearchResponseOut:
        t0 = time.perf_counter()
        await check_form_keys(request, IMAGE_FORM_FIELDS)
        bundle = current()
        check_top_k(top_k)
        filters = form_filters(category, price_min, price_max, gender)
        img = await read_upload(image)
        resp = await run_in_threadpool(run_search, bundle, "search_image", img, top_k=top_k, filters=filters)
        return search_response(bundle, resp, t0)

    @app.post("/search/multimodal", response_model=SearchResponseOut, tags=["search"])
    async def search_multimodal(request: Request, image: UploadFile = File(...), text: str = Form(...),
                                image_weight: float = Form(0.5, ge=0.0, le=1.0), top_k: int = Form(10),
                                category: str | None = Form(None), price_min: float | None = Form(None),
                                price_max: float | None = Form(None), gender: str | None = Form(None)) -> SearchResponseOut:
        t0 = time.perf_counter()
        await check_form_keys(request, MULTIMODAL_FORM_FIELDS)
        bundle = current()
        check_top_k(top_k)
        if has_surrogate(text):
            raise HTTPException(422, ["text: contains an unpaired surrogate (not valid Unicode)"])
        text = " ".join(text.split())
        if not text:
            raise HTTPException(422, ["text: must contain at least one non-whitespace character"])
        truncated = len(text) > max_query_chars
        text = text[:max_query_chars]
        filters = form_filters(category, price_min, price_max, gender)
        img = await read_upload(image)
        resp = await run_in_threadpool(run_search, bundle, "search_multimodal", text, img, image_weight=image_weight,
                                       top_k=top_k, filters=filters)
        return search_response(bundle, resp, t0, truncated)

    register_look_route(app, params=params, current=current, check_top_k=check_top_k, read_upload=read_upload,
                        check_form_keys=check_form_keys, results_out=results_out, metrics=metrics)

    @app.get("/similar/{item_id}", response_model=SearchResponseOut, tags=["search"])
    def similar(item_id: str, top_k: int = Query(10)) -> SearchResponseOut:
        t0 = time.perf_counter()
        bundle = current()
        check_top_k(top_k)
        if item_id not in bundle.items:
            raise HTTPException(404, f"unknown item: {item_id}")
        resp = run_search(bundle, "similar", item_id, top_k=top_k)
        return search_response(bundle, resp, t0)

    # ---- recommendations -----------------------------------------------------------------------
    @app.get("/recommend/{user_id}", response_model=RecommendResponseOut, tags=["recommend"])
    def recommend(user_id: str, top_k: int = Query(int(scfg.get("recommend_top_k_default", 20))),
                  context: str = Query("", description="comma-separated item ids the user just viewed")
                  ) -> RecommendResponseOut:
        t0 = time.perf_counter()
        bundle = current()
        check_top_k(top_k)
        if len(user_id) > 128:
            raise HTTPException(422, ["user_id: at most 128 characters"])
        if bundle.recommender is None:
            raise HTTPException(503, f"bundle {bundle.version} has no recommender")
        ctx = [c for c in (s.strip() for s in context.split(",")[:50]) if c and c in bundle.items]
        with metrics.stage("feature_store"):
            user_features, fs_status = features.get_user_features(user_id)
        if fs_status == "unavailable":
            user_features = {"available": False}      # the recommender then answers content-only
        elif user_features:
            user_features = {feature_rename.get(k, k): v for k, v in user_features.items()}
        with metrics.stage("recommend"), bundle.lock.write():
            try:
                # ask for extra items so that live-deleted ones can be dropped without returning fewer than top_k
                want = min(top_k + len(bundle.live_deleted), top_k_max)
                resp = bundle.recommender.recommend(user_id, top_k=want, context=ctx, user_features=user_features)
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from exc
        items = getattr(resp, "items", resp)
        fallback = getattr(resp, "fallback", None)
        out = [RecommendationOut(item_id=str(r.item_id), title=bundle.items[str(r.item_id)].get("title") or "",
                                 score=float(r.score), image_url=image_url(bundle, str(r.item_id)),
                                 path=str(getattr(r, "path", "") or "unknown"))
               for r in items if str(r.item_id) in bundle.items and math.isfinite(float(r.score))][:top_k]
        if fs_status == "unavailable" and not fallback:
            fallback = "content_only"
        return RecommendResponseOut(user_id=user_id, items=out, fallback=fallback, feature_store=fs_status,
                                    latency_ms=round((time.perf_counter() - t0) * 1000.0, 3),
                                    bundle_version=bundle.version)

    # ---- items -------------------------------------------------------------------------------
    @app.get("/items/{item_id}", response_model=ItemOut, tags=["items"])
    def get_item(item_id: str) -> ItemOut:
        bundle = current()
        rec = bundle.items.get(item_id)
        if rec is None:
            raise HTTPException(404, f"unknown item: {item_id}")
        fields = {k: rec.get(k) for k in ItemOut.__fields__ if k in rec and rec.get(k) is not None}
        return ItemOut(**{**fields, "item_id": item_id, "image_url": image_url(bundle, item_id),
                          "live_added": item_id in bundle.live_added})

    @app.get("/items/{item_id}/image", tags=["items"], response_class=FileResponse)
    def get_item_image(item_id: str) -> FileResponse:
        bundle = current()
        # id -> file resolved at load time from the bundle's own table; the request never names a path.
        path = bundle.image_files.get(item_id)
        if path is None:
            raise HTTPException(404, f"no image for item: {item_id}")
        return FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})

    # ---- operations --------------------------------------------------------------------------
    # async: answered on the event loop even when every worker thread is busy searching
    @app.get("/health", tags=["ops"])
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready", response_model=ReadyResponse, tags=["ops"],
             responses={503: {"description": "no bundle loaded"}})
    async def ready() -> Any:
        bundle = manager.bundle
        body = ReadyResponse(
            ready=bundle is not None, version=bundle.version if bundle else None,
            manifest={k: _finite(bundle.manifest[k]) for k in PUBLIC_MANIFEST_KEYS if k in bundle.manifest}
            if bundle else None,
            loaded_at=bundle.loaded_at if bundle else None,
            live_items_added=len(bundle.live_added) if bundle else 0,
            live_items_deleted=len(bundle.live_deleted) if bundle else 0,
            latency=metrics.monitor.percentiles(), text_backend=text_backend)
        if bundle is None:
            return JSONResponse(status_code=503, content={**body.dict(), "error": public(manager.last_error)})
        return body

    @app.get("/metrics", tags=["ops"])
    def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    # ---- admin ---------------------------------------------------------------------------------
    @app.post("/admin/reload", response_model=ReloadResponse, tags=["admin"], dependencies=[Depends(require_admin)],
              responses={409: {"description": "the new bundle failed validation; the old one keeps serving"}})
    def admin_reload(force: bool = Query(False)) -> Any:
        with metrics.stage("reload"):
            result = manager.reload(force=force)
        metrics.reloads.labels(outcome=result.outcome).inc()
        body = ReloadResponse(swapped=result.outcome == "swapped", version=result.version,
                              previous_version=result.previous_version, message=public(result.message) or "",
                              load_ms=result.load_ms)
        if result.outcome == "refused":
            return JSONResponse(status_code=409, content=body.dict())
        return body

    @app.post("/admin/items", response_model=AddItemsResponse, tags=["admin"], dependencies=[Depends(require_admin)])
    def admin_add_items(req: AddItemsRequest) -> AddItemsResponse:
        current()
        for it in req.items:
            if len(it.attributes) > max_attributes:
                raise HTTPException(422, [f"item {it.item_id}: at most {max_attributes} attributes, got {len(it.attributes)}"])
            if it.image_base64 is not None and len(it.image_base64) > max_b64:
                raise HTTPException(413, f"item {it.item_id}: image_base64 larger than {scfg['max_image_base64_mb']} MB")
        with metrics.stage("embed_add"):
            try:
                bundle, ms = manager.add_items([it.dict() for it in req.items])
            except ImageError as exc:
                raise HTTPException(400, f"bad image: {exc}") from exc
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from exc
        metrics.live_items.labels(op="add").inc(len(req.items))
        return AddItemsResponse(added=[it.item_id for it in req.items], add_to_searchable_ms=round(ms, 3),
                                bundle_version=bundle.version)

    @app.delete("/admin/items/{item_id}", response_model=DeleteItemResponse, tags=["admin"],
                dependencies=[Depends(require_admin)])
    def admin_delete_item(item_id: str) -> DeleteItemResponse:
        current()
        if not valid_item_id(item_id):
            # the delta log could not record it, so the item would come back at the next start: refuse now
            raise HTTPException(422, [f"item_id {item_id[:140]!r} does not match the item id rule; it cannot be deleted live"])
        try:
            bundle = manager.delete_item(item_id)
        except KeyError as exc:
            raise HTTPException(404, f"unknown item: {item_id}") from exc
        metrics.live_items.labels(op="delete").inc()
        return DeleteItemResponse(deleted=item_id, bundle_version=bundle.version)

    return app


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
    keep_alive = float(load_params().get("serving", {}).get("keep_alive_s", 5))
    opts = {"host": host, "port": port, "log_level": "info", "access_log": False, "timeout_keep_alive": keep_alive}
    if workers <= 1:
        uvicorn.run(create_app(serving_dir), **opts)
        return
    os.environ["PIXELMATCH_SERVING_DIR"] = str(Path(serving_dir).resolve())
    uvicorn.run("serving.app:app_from_env", factory=True, workers=workers, **opts)
