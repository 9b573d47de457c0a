"""POST /events: one shopper event (view, click, add_to_cart, purchase) updates the user's online features at once.

The event is checked, folded into the user's row (``modules.recommend.online_features.apply_event``: the last N item
ids, their categories, colours and price band, counts) and pushed to the Feast online store through the push source
``user_events``; the next ``/recommend/{user_id}`` reads the new row. Answers:
  200  written; the body shows the user's new recent profile
  422  a bad event: missing, unknown or oversized fields, an unknown event type, an item the served catalog does
       not hold, a timestamp further in the future than ``serving.events.max_clock_skew_s``
  503  the online store is missing or could not be written (the event was NOT recorded: retry it)
(No ``from __future__ import annotations``: FastAPI reads the route signature.)
"""
import threading
import time
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field, StrictStr, conint

from modules.recommend.online_features import ItemAttrs, apply_event, recent_len
from serving.bundle_loading import ServingBundle
from serving.deps import BundleDep, FeaturesDep, MetricsDep, Settings
from serving.feature_store import FeatureStoreWriteError
from serving.schemas import _Strict


class EventIn(_Strict):
    user_id: StrictStr = Field(..., min_length=1, description="the shopper (at most serving.events.max_id_chars)")
    item_id: StrictStr = Field(..., min_length=1, description="an item of the served catalog")
    event: StrictStr = Field(..., description="view, click, add_to_cart or purchase (recommend.event_weights)")
    ts: conint(strict=True, ge=0) | None = Field(None, description="unix seconds; default: the server's clock")


class EventOut(BaseModel):
    user_id: str
    item_id: str
    event: str
    ts: int
    recent_item_ids: list[str]
    recent_categories: list[str]
    recent_colors: list[str]
    price_band: int
    n_events: int
    bundle_version: str


class _AttrsCache:
    """The catalog's ItemAttrs for the bundle being served, rebuilt when the bundle or its live items change."""

    def __init__(self, n_price_bands: int) -> None:
        self.n_price_bands = n_price_bands
        self._key: tuple[Any, ...] | None = None
        self._attrs: ItemAttrs | None = None
        self._lock = threading.Lock()

    def get(self, bundle: ServingBundle) -> ItemAttrs:
        key = (id(bundle), bundle.version, len(bundle.items))
        with self._lock:
            if self._key != key or self._attrs is None:
                with bundle.lock.read():
                    ids = list(bundle.items)
                    recs = [bundle.items[i] for i in ids]
                    colors = _colors(bundle, ids)
                self._attrs = ItemAttrs.build(ids, [r.get("category") for r in recs], [r.get("price") for r in recs],
                                              colors, self.n_price_bands)
                self._key = key
            return self._attrs


def _colors(bundle: ServingBundle, ids: list[str]) -> list[str]:
    """The named dominant colour of each item's photo (the search engine's), else a ``color`` attribute."""
    names, rows = getattr(bundle.engine, "item_colors", None), getattr(bundle.engine, "id_to_row", None)
    if isinstance(names, list) and isinstance(rows, dict):
        return [names[rows[i]] if i in rows else "" for i in ids]
    attrs = [bundle.items[i].get("attributes") or {} for i in ids]
    return [str(a.get("color") or a.get("colour") or "") for a in attrs]


def _check(ev: EventIn, bundle: ServingBundle, s: Settings, event_types: tuple[str, ...]) -> int:
    """The event's timestamp once every rule holds; else 422 listing every problem."""
    cfg = s.config.serving.events
    now = time.time()
    problems = [f"{name}: at most {cfg.max_id_chars} characters" for name in ("user_id", "item_id")
                if len(getattr(ev, name)) > cfg.max_id_chars]
    if ev.event not in event_types:
        problems.append(f"event: unknown event type {ev.event[:40]!r}; expected one of {', '.join(event_types)}")
    if len(ev.item_id) <= cfg.max_id_chars and (ev.item_id not in bundle.items or ev.item_id in bundle.live_deleted):
        problems.append(f"item_id: unknown item {ev.item_id!r} (not in the served catalog, bundle {bundle.version})")
    ts = int(now) if ev.ts is None else ev.ts
    if ts > now + cfg.max_clock_skew_s:
        problems.append(f"ts: {ts} is {ts - now:.0f} s in the future (at most {cfg.max_clock_skew_s:g} s of clock "
                        "skew is accepted)")
    if problems:
        raise HTTPException(422, problems)
    return ts


def build_router(s: Settings) -> APIRouter:
    router = APIRouter(tags=["events"])
    event_types = tuple(s.config.recommend.event_weights)
    rec = s.config.recommend
    n_recent = recent_len(rec.two_tower.history_len, rec.content.history_len)   # the publisher's N
    attrs_cache = _AttrsCache(int(s.config.recommend.n_price_bands))

    @router.post("/events", response_model=EventOut)
    def post_event(ev: EventIn, bundle: BundleDep, features: FeaturesDep, metrics: MetricsDep) -> EventOut:
        ts = _check(ev, bundle, s, event_types)
        attrs = attrs_cache.get(bundle)
        try:
            with metrics.stage("feature_store_write"):
                row = features.update_user(ev.user_id, lambda old: apply_event(old, ev.item_id, ts, attrs, n_recent))
        except FeatureStoreWriteError as exc:
            raise HTTPException(503, f"event not recorded: {exc}; retry it") from exc
        return EventOut(user_id=ev.user_id, item_id=ev.item_id, event=ev.event, ts=ts,
                        recent_item_ids=row["recent_items"], recent_categories=row["recent_categories"],
                        recent_colors=row["recent_colors"], price_band=row["price_band"], n_events=row["n_events"],
                        bundle_version=bundle.version)

    return router
