"""What several routes share: engine calls under the bundle lock, engine answers -> response models, uploads.

Engine errors become HTTP errors here: KeyError (``modules.search.UnknownItemError`` is one) -> 404,
ValueError -> 422. Non-finite floats never reach JSON (a result with a non-finite score is dropped, a non-finite
explain score or intent becomes null).
"""
from __future__ import annotations

import math
import time
from typing import Any

from fastapi import HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from modules.data.images import ImageError
from serving.bundle_loading import ServingBundle
from serving.bundle_manager import BundleManager
from serving.deps import Settings
from serving.monitoring import Metrics
from serving.schemas import Explain, Filters, ResultOut, SearchResponseOut

ACCEPTED_UPLOAD_TYPES = ("image/", "application/octet-stream")


def error(status: int, detail: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail})


def finite(value: Any) -> Any:
    """Non-finite floats (a price parsed to inf) -> None, recursively: JSON has no inf/NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def validation_messages(errors: list[dict]) -> list[str]:
    """pydantic errors -> ``["field: message", ...]`` (the 422 detail of every validation error)."""
    out = []
    for e in errors:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path"))
        out.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
    return out


def image_url(bundle: ServingBundle, item_id: str) -> str | None:
    return f"/items/{item_id}/image" if item_id in bundle.image_files else None


def results_out(bundle: ServingBundle, results: list[Any]) -> list[ResultOut]:
    """Engine results (``modules.search.Result``) -> API results; items missing from the table are dropped."""
    out = []
    for r in results:
        iid = str(r.item_id)
        rec = bundle.items.get(iid)
        if rec is None:   # deleted between index and table (should not happen); never show it
            continue
        raw = dict(getattr(r, "explain", None) or {})
        filled = raw.pop("filled", None)
        explain = {k: (None if v is None else finite(float(v))) for k, v in raw.items() if k in Explain.__fields__}
        if filled:
            explain["filled"] = {c: {"value": str(f["value"]), "confidence": finite(float(f["confidence"])) or 0.0}
                                 for c, f in filled.items()}
        if not math.isfinite(float(r.score)):
            continue
        out.append(ResultOut(item_id=iid, title=rec.get("title") or "", score=float(r.score),
                             image_url=image_url(bundle, iid), explain=Explain(**explain)))
    return out


def run_search(bundle: ServingBundle, metrics: Metrics, fn_name: str, *args: Any, **kwargs: Any) -> Any:
    """``bundle.engine.<fn_name>(*args, **kwargs)`` under the bundle's read lock."""
    with metrics.stage("search"), bundle.lock.read():
        try:
            return getattr(bundle.engine, fn_name)(*args, **kwargs)
        except KeyError as exc:
            raise HTTPException(404, f"unknown item: {exc.args[0] if exc.args else exc}") from exc
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc


def search_response(bundle: ServingBundle, resp: Any, t0: float, truncated: bool = False) -> SearchResponseOut:
    """An engine answer (``modules.search.SearchResponse``) -> the API's search answer."""
    return SearchResponseOut(
        results=results_out(bundle, resp.results), latency_ms=round((time.perf_counter() - t0) * 1000.0, 3),
        low_confidence=bool(getattr(resp, "low_confidence", False)),
        intents=finite(dict(getattr(resp, "intents", None) or {})), query_truncated=truncated,
        bundle_version=bundle.version)


async def read_upload(upload: UploadFile, settings: Settings, manager: BundleManager, metrics: Metrics) -> Any:
    """The uploaded image, decoded: 415 for a non-image type, 413 past the cap, 400 when empty or undecodable."""
    ctype = (upload.content_type or "").lower()
    if ctype and not ctype.startswith(ACCEPTED_UPLOAD_TYPES):
        raise HTTPException(415, f"image upload has content type {ctype!r}; send an image (image/jpeg, image/png, ...)")
    data = await upload.read(settings.max_upload + 1)
    if len(data) > settings.max_upload:
        raise HTTPException(413, f"image larger than {settings.upload_mb} MB")
    if not data:
        raise HTTPException(400, "image file is empty (0 bytes)")
    with metrics.stage("decode_image"):
        try:
            return await run_in_threadpool(manager.decode_image, data)   # semaphore-bounded
        except ImageError as exc:
            raise HTTPException(400, f"bad image: {exc}") from exc


async def check_form_keys(request: Request, allowed: set[str]) -> None:
    """422 for a form field the route does not take (a typo would otherwise be silently ignored)."""
    form = await request.form()
    unknown = sorted(set(form.keys()) - allowed)
    if unknown:
        raise HTTPException(422, [f"unknown form field(s) {unknown}; allowed: {sorted(allowed)}"])


def form_filters(category: str | None, price_min: float | None, price_max: float | None,
                 gender: str | None) -> dict | None:
    """The filter form fields, validated like the JSON ``filters`` object."""
    try:
        return Filters(category=category, price_min=price_min, price_max=price_max, gender=gender).to_engine()
    except ValidationError as exc:
        raise HTTPException(422, validation_messages(exc.errors())) from exc
