"""POST /search/look: product regions of an uploaded photo, each with its photo-search results (issue 21).

The upload is read and decoded exactly like /search/image (`read_upload`: content type, size cap, the bundle
manager's semaphore-bounded decode with its pixel cap). Regions are proposed outside the bundle lock
(:class:`modules.look.LookProposer`, created on the first request: its models load then), then each region's
crop is searched with the engine's `search_image` under the lock. With ``look.warm_up_at_start`` the models load
and run once in a background thread at startup (SSD's first run costs seconds), so the first request is not slow.
(No ``from __future__ import annotations``: FastAPI reads the route signature, and its ``top_k`` type is local.)
"""
import logging
import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from modules.look import LookProposer, look_config, search_regions
from serving.deps import BundleDep, ManagerDep, MetricsDep, Settings
from serving.monitoring import Metrics
from serving.routes.common import check_form_keys, read_upload, results_out
from serving.schemas import LookRegionOut, LookResponseOut, top_k_type

LOOK_FORM_FIELDS = {"image", "top_k"}
log = logging.getLogger("pixelmatch.serving")


class LookService:
    """The app's region proposer (created on first use, or by the startup warm-up) and the look settings."""

    def __init__(self, params: dict) -> None:
        self.params = params
        self.cfg = look_config(params)
        self._proposer: LookProposer | None = None
        self._lock = threading.Lock()

    def proposer(self) -> LookProposer:
        with self._lock:
            if self._proposer is None:
                self._proposer = LookProposer(self.cfg, seed=int(self.params.get("seed", 42)))
            return self._proposer

    def start_warm_up(self) -> None:
        """With ``look.warm_up_at_start``: load and run the models once, in a background thread."""
        if self.cfg.get("warm_up_at_start"):
            threading.Thread(target=self._warm_up, name="look-warm-up", daemon=True).start()

    def _warm_up(self) -> None:
        try:
            p = self.proposer()
            if p.models is not None:
                p.models.warm_up()
        except Exception:       # noqa: BLE001 (a failed warm-up only means a slow first request)
            log.exception("look: model warm-up failed; the first /search/look request loads them")

    def propose(self, img: Any, metrics: Metrics) -> tuple[list, str]:
        p = self.proposer()
        with metrics.stage("look_proposals"):
            return p.propose(img), ("salient" if p.models is None else f"models+{self.cfg['mode']}")

    def search(self, bundle: Any, img: Any, regions: list, top_k: int, metrics: Metrics) -> list:
        with metrics.stage("search"), bundle.lock.read():
            try:
                return search_regions(bundle.engine, img, regions, top_k, self.cfg)
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from exc


async def get_look(request: Request) -> LookService:
    return request.app.state.look


LookDep = Annotated[LookService, Depends(get_look)]


def build_router(s: Settings, look: LookService) -> APIRouter:
    router = APIRouter(tags=["search"])
    TopK = top_k_type(s.top_k_max)  # noqa: N806 (a type)

    @router.post("/search/look", response_model=LookResponseOut)
    async def search_look(request: Request, bundle: BundleDep, manager: ManagerDep, metrics: MetricsDep,
                          service: LookDep, image: UploadFile = File(...),
                          top_k: TopK = Form(int(look.cfg["top_k_default"]))) -> LookResponseOut:
        """Shop the look: the products in a photo of an outfit or a room, each searched on its own."""
        t0 = time.perf_counter()
        await check_form_keys(request, LOOK_FORM_FIELDS)
        img = await read_upload(image, s, manager, metrics)
        regions, how = await run_in_threadpool(service.propose, img, metrics)
        found = await run_in_threadpool(service.search, bundle, img, regions, top_k, metrics)
        out = [LookRegionOut(box=list(f.region.box), label=f.region.label, confidence=f.region.confidence,
                             source=f.region.source, results=results_out(bundle, f.response.results)) for f in found]
        return LookResponseOut(regions=out, image_width=img.size[0], image_height=img.size[1], proposer=how,
                               latency_ms=round((time.perf_counter() - t0) * 1000.0, 3),
                               bundle_version=bundle.version)

    return router
