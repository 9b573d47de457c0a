"""GET /items/{item_id} (the item's record) and GET /items/{item_id}/image (its photo)."""
from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from serving.deps import BundleDep
from serving.routes.common import image_url
from serving.schemas import ItemOut

router = APIRouter(tags=["items"])


@router.get("/items/{item_id}", response_model=ItemOut)
def get_item(item_id: str, bundle: BundleDep) -> ItemOut:
    rec = bundle.items.get(item_id)
    if rec is None:
        raise HTTPException(404, f"unknown item: {item_id}")
    fields = {k: rec.get(k) for k in ItemOut.__fields__ if k in rec and rec.get(k) is not None}
    return ItemOut(**{**fields, "item_id": item_id, "image_url": image_url(bundle, item_id),
                      "live_added": item_id in bundle.live_added})


@router.get("/items/{item_id}/image", response_class=FileResponse)
def get_item_image(item_id: str, bundle: BundleDep) -> FileResponse:
    # id -> file resolved at load time from the bundle's own table; the request never names a path.
    path = bundle.image_files.get(item_id)
    if path is None:
        raise HTTPException(404, f"no image for item: {item_id}")
    return FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})
