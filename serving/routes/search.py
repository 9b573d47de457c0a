"""Search routes: POST /search/text, /search/image, /search/multimodal and GET /similar/{item_id}.

The three searches take an optional ``user_id`` (JSON field / form field): the hybrid ranking is then personalised
with the user's two-tower score per candidate (serving/personalise.py; ``explain.two_tower``). An unknown user is
no error: the ordinary answer, ``explain.two_tower`` null.

Every answer is a ``SearchResponseOut`` (``results``). ``top_k`` is bounded by its declared type
(``serving.schemas.top_k_type``, 1..params ``serving.top_k_max``), which is why the router is built per app by
``build_router(settings)``. (No ``from __future__ import annotations`` here: FastAPI reads these signatures, and
the ``top_k`` types are local to ``build_router``.)

The routes return the answer as an ``ORJSONResponse`` of the model's ``dict()`` themselves (``as_json``), so FastAPI
does not validate the already-validated ``SearchResponseOut`` a second time and walk it with ``jsonable_encoder``;
the bytes are the same. ``response_model`` still
documents the answer in the OpenAPI schema.
"""
import time

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import ORJSONResponse
from starlette.concurrency import run_in_threadpool

from serving.deps import BundleDep, FeaturesDep, ManagerDep, MetricsDep, Settings
from serving.personalise import user_context
from serving.routes.common import check_form_keys, form_filters, read_upload, run_search, search_response
from serving.schemas import SearchResponseOut, TextSearchRequest, has_surrogate, top_k_type

IMAGE_FORM_FIELDS = {"image", "top_k", "category", "price_min", "price_max", "gender", "user_id"}
MULTIMODAL_FORM_FIELDS = IMAGE_FORM_FIELDS | {"text", "image_weight"}


def as_json(answer: SearchResponseOut) -> ORJSONResponse:
    """The answer's JSON, as FastAPI would write it for ``response_model=SearchResponseOut`` (no aliases, nulls kept)."""
    return ORJSONResponse(answer.dict())


def check_user_id(user_id: str | None, s: Settings) -> str | None:
    """422 past ``serving.events.max_id_chars`` (the cap /recommend and POST /events apply); "" counts as none."""
    cap = s.config.serving.events.max_id_chars
    if user_id is not None and len(user_id) > cap:
        raise HTTPException(422, [f"user_id: at most {cap} characters"])
    return user_id or None


def with_context(context: dict | None) -> dict:
    """The engine keyword for a personalised search (nothing without one: an engine without the hook still serves)."""
    return {"context": context} if context is not None else {}


def build_router(s: Settings) -> APIRouter:
    router = APIRouter(tags=["search"])
    _add_text(router, s)
    _add_image(router, s)
    _add_multimodal(router, s)
    _add_similar(router, s)
    return router


def _add_text(router: APIRouter, s: Settings) -> None:
    request_model = TextSearchRequest.with_top_k_max(s.top_k_max)

    @router.post("/search/text", response_model=SearchResponseOut)
    def search_text(req: request_model, bundle: BundleDep, metrics: MetricsDep,  # type: ignore[valid-type]
                    features: FeaturesDep) -> ORJSONResponse:
        t0 = time.perf_counter()
        user_id = check_user_id(req.user_id, s)
        query = req.query
        truncated = len(query) > s.max_query_chars
        if truncated:
            query = query[:s.max_query_chars]
        filters = req.filters.to_engine() if req.filters else None
        context = user_context(bundle, features, metrics, user_id) if req.retriever == "hybrid" else None
        resp = run_search(bundle, metrics, "search_text", query, top_k=req.top_k, retriever=req.retriever,
                          filters=filters, **with_context(context))
        return as_json(search_response(bundle, resp, t0, truncated))


def _add_image(router: APIRouter, s: Settings) -> None:
    TopK = top_k_type(s.top_k_max)  # noqa: N806 (a type)

    @router.post("/search/image", response_model=SearchResponseOut)
    async def search_image(request: Request, bundle: BundleDep, manager: ManagerDep, metrics: MetricsDep,
                           features: FeaturesDep, image: UploadFile = File(...), top_k: TopK = Form(10),
                           category: str | None = Form(None), price_min: float | None = Form(None),
                           price_max: float | None = Form(None), gender: str | None = Form(None),
                           user_id: str | None = Form(None)) -> ORJSONResponse:
        t0 = time.perf_counter()
        await check_form_keys(request, IMAGE_FORM_FIELDS)
        user_id = check_user_id(user_id, s)
        filters = form_filters(category, price_min, price_max, gender)
        img = await read_upload(image, s, manager, metrics)
        context = await run_in_threadpool(user_context, bundle, features, metrics, user_id) if user_id else None
        resp = await run_in_threadpool(run_search, bundle, metrics, "search_image", img, top_k=top_k, filters=filters,
                                       **with_context(context))
        return as_json(search_response(bundle, resp, t0))


def _add_multimodal(router: APIRouter, s: Settings) -> None:
    TopK = top_k_type(s.top_k_max)  # noqa: N806 (a type)

    @router.post("/search/multimodal", response_model=SearchResponseOut)
    async def search_multimodal(request: Request, bundle: BundleDep, manager: ManagerDep, metrics: MetricsDep,
                                features: FeaturesDep, image: UploadFile = File(...), text: str = Form(...),
                                image_weight: float = Form(0.5, ge=0.0, le=1.0), top_k: TopK = Form(10),
                                category: str | None = Form(None), price_min: float | None = Form(None),
                                price_max: float | None = Form(None), gender: str | None = Form(None),
                                user_id: str | None = Form(None)
                                ) -> ORJSONResponse:
        t0 = time.perf_counter()
        await check_form_keys(request, MULTIMODAL_FORM_FIELDS)
        user_id = check_user_id(user_id, s)
        if has_surrogate(text):
            raise HTTPException(422, ["text: contains an unpaired surrogate (not valid Unicode)"])
        text = " ".join(text.split())
        if not text:
            raise HTTPException(422, ["text: must contain at least one non-whitespace character"])
        truncated = len(text) > s.max_query_chars
        text = text[:s.max_query_chars]
        filters = form_filters(category, price_min, price_max, gender)
        img = await read_upload(image, s, manager, metrics)
        context = await run_in_threadpool(user_context, bundle, features, metrics, user_id) if user_id else None
        resp = await run_in_threadpool(run_search, bundle, metrics, "search_multimodal", text, img,
                                       image_weight=image_weight, top_k=top_k, filters=filters, **with_context(context))
        return as_json(search_response(bundle, resp, t0, truncated))


def _add_similar(router: APIRouter, s: Settings) -> None:
    TopK = top_k_type(s.top_k_max)  # noqa: N806 (a type)

    @router.get("/similar/{item_id}", response_model=SearchResponseOut)
    def similar(item_id: str, bundle: BundleDep, metrics: MetricsDep, top_k: TopK = Query(10)) -> ORJSONResponse:
        t0 = time.perf_counter()
        if item_id not in bundle.items:
            raise HTTPException(404, f"unknown item: {item_id}")
        resp = run_search(bundle, metrics, "similar", item_id, top_k=top_k)
        return as_json(search_response(bundle, resp, t0))
