"""POST /search/look: product regions of an uploaded photo, each with its photo-search results (issue 21).

The upload is read and decoded exactly like /search/image (`read_upload`: content type, size cap, the bundle
manager's semaphore-bounded decode with its pixel cap). Regions are proposed outside the bundle lock
(:class:`modules.look.LookProposer`, created on the first request: its models load then), then each region's
crop is searched with the engine's `search_image` under the lock. With ``look.warm_up_at_start`` the models load
and run once in a background thread at startup (SSD's first run costs seconds), so the first request is not slow.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from modules.config import param_seed
from modules.look import LookProposer, look_config, search_regions
from serving.schemas import LookRegionOut, LookResponseOut

LOOK_FORM_FIELDS = {"image", "top_k"}
log = logging.getLogger("pixelmatch.serving")


def register_look_route(app: FastAPI, *, params: dict, current: Callable, check_top_k: Callable,
                        read_upload: Callable, check_form_keys: Callable, results_out: Callable, metrics: Any) -> None:
    cfg = look_config(params)
    holder: dict[str, LookProposer] = {}
    lock = threading.Lock()

    def proposer() -> LookProposer:
        with lock:
            if "p" not in holder:
                holder["p"] = LookProposer(cfg, seed=param_seed(params))
            return holder["p"]

    def warm_up() -> None:
        try:
            p = proposer()
            if p.models is not None:
                p.models.warm_up()
        except Exception:       # noqa: BLE001 (a failed warm-up only means a slow first request)
            log.exception("look: model warm-up failed; the first /search/look request loads them")

    @app.on_event("startup")
    def _warm_look_models() -> None:
        if cfg.get("warm_up_at_start"):
            threading.Thread(target=warm_up, name="look-warm-up", daemon=True).start()

    def propose(img: Any) -> tuple[list, str]:
        p = proposer()
        with metrics.stage("look_proposals"):
            return p.propose(img), ("salient" if p.models is None else f"models+{cfg['mode']}")

    def search(bundle: Any, img: Any, regions: list, top_k: int) -> list:
        with metrics.stage("search"), bundle.lock.read():
            try:
                return search_regions(bundle.engine, img, regions, top_k, cfg)
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from exc

    @app.post("/search/look", response_model=LookResponseOut, tags=["search"])
    async def search_look(request: Request, image: UploadFile = File(...),
                          top_k: int = Form(int(cfg["top_k_default"]))) -> LookResponseOut:
        """Shop the look: the products in a photo of an outfit or a room, each searched on its own."""
        t0 = time.perf_counter()
        await check_form_keys(request, LOOK_FORM_FIELDS)
        bundle = current()
        check_top_k(top_k)
        img = await read_upload(image)
        regions, how = await run_in_threadpool(propose, img)
        found = await run_in_threadpool(search, bundle, img, regions, top_k)
        out = [LookRegionOut(box=list(f.region.box), label=f.region.label, confidence=f.region.confidence,
                             source=f.region.source, results=results_out(bundle, f.response.results)) for f in found]
        return LookResponseOut(regions=out, image_width=img.size[0], image_height=img.size[1], proposer=how,
                               latency_ms=round((time.perf_counter() - t0) * 1000.0, 3),
                               bundle_version=bundle.version)
