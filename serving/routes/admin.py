"""Admin routes (bearer token, ``serving.deps.require_admin``): POST /admin/reload, POST /admin/items,
DELETE /admin/items/{item_id}. Live adds and deletes go through the bundle manager (delta log first)."""
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse

from modules.data.images import ImageError
from serving.deps import BundleDep, ManagerDep, MetricsDep, SettingsDep, require_admin
from serving.schemas import AddItemsRequest, AddItemsResponse, DeleteItemResponse, ReloadResponse, valid_item_id

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


@router.post("/reload", response_model=ReloadResponse,
             responses={409: {"description": "the new bundle failed validation; the old one keeps serving"}})
def admin_reload(manager: ManagerDep, metrics: MetricsDep, settings: SettingsDep, force: bool = Query(False)) -> Any:
    with metrics.stage("reload"):
        result = manager.reload(force=force)
    metrics.reloads.labels(outcome=result.outcome).inc()
    body = ReloadResponse(swapped=result.outcome == "swapped", version=result.version,
                          previous_version=result.previous_version, message=settings.public(result.message) or "",
                          load_ms=result.load_ms)
    if result.outcome == "refused":
        return JSONResponse(status_code=409, content=body.dict())
    return body


@router.post("/items", response_model=AddItemsResponse)
def admin_add_items(req: AddItemsRequest, _: BundleDep, manager: ManagerDep, metrics: MetricsDep,
                    settings: SettingsDep) -> AddItemsResponse:
    for it in req.items:
        if len(it.attributes) > settings.max_attributes:
            raise HTTPException(422, [f"item {it.item_id}: at most {settings.max_attributes} attributes, "
                                      f"got {len(it.attributes)}"])
        if it.image_base64 is not None and len(it.image_base64) > settings.max_b64:
            raise HTTPException(413, f"item {it.item_id}: image_base64 larger than "
                                     f"{settings.b64_mb} MB")
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


@router.delete("/items/{item_id}", response_model=DeleteItemResponse)
def admin_delete_item(item_id: str, _: BundleDep, manager: ManagerDep, metrics: MetricsDep) -> DeleteItemResponse:
    if not valid_item_id(item_id):
        # the delta log could not record it, so the item would come back at the next start: refuse now
        raise HTTPException(422, [f"item_id {item_id[:140]!r} does not match the item id rule; "
                                  "it cannot be deleted live"])
    try:
        bundle = manager.delete_item(item_id)
    except KeyError as exc:
        raise HTTPException(404, f"unknown item: {item_id}") from exc
    metrics.live_items.labels(op="delete").inc()
    return DeleteItemResponse(deleted=item_id, bundle_version=bundle.version)
