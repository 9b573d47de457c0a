"""Request and response models of the PixelMatch HTTP API (pydantic v1).

Every request model forbids unknown keys, so a typo in a filter name is a 422 with the key
named in the message instead of a silently ignored filter, and refuses strings with an unpaired UTF-16
surrogate (valid JSON, e.g. "\\ud800", but not Unicode: tokenizers and UTF-8 writers fail on it).
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, confloat, conint, constr, root_validator, validator

# One item id rule for the API, the delta log, its replay and its ingestion (modules/data/delta_ingest.py).
from modules.data.delta_ingest import ITEM_ID_PATTERN as _ITEM_ID_RE

RETRIEVERS = ("hybrid", "bm25", "tfidf", "text", "image", "fusion")
Retriever = Literal["hybrid", "bm25", "tfidf", "text", "image", "fusion"]
Gender = Literal["women", "men", "unisex"]

# Item ids are used as map keys only (never as paths), but keep them printable and bounded.
ITEM_ID_PATTERN = _ITEM_ID_RE.pattern


def valid_item_id(item_id: str) -> bool:
    return bool(_ITEM_ID_RE.match(item_id))


def has_surrogate(value: Any) -> bool:
    """True when a string (or any string inside a dict/list) holds an unpaired surrogate code point."""
    if isinstance(value, str):
        return any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return any(has_surrogate(k) or has_surrogate(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(has_surrogate(v) for v in value)
    return False


class _Strict(BaseModel):
    class Config:
        extra = "forbid"
        anystr_strip_whitespace = False
        allow_inf_nan = False      # JSON bodies may say Infinity/NaN (Python's parser accepts them): 422

    @root_validator(pre=True)
    def _no_surrogates(cls, values: dict) -> dict:  # noqa: N805
        bad = sorted(str(k) for k, v in values.items() if has_surrogate(v))
        if bad:
            raise ValueError(f"{', '.join(bad)}: contains an unpaired surrogate (not valid Unicode)")
        return values


class Filters(_Strict):
    """Optional result filters; all given conditions must hold."""

    category: constr(strip_whitespace=True, min_length=1, max_length=100) | None = None
    price_min: confloat(ge=0) | None = None
    price_max: confloat(ge=0) | None = None
    gender: Gender | None = None

    @root_validator(skip_on_failure=True)
    def _price_range(cls, values: dict) -> dict:  # noqa: N805 (pydantic validator)
        lo, hi = values.get("price_min"), values.get("price_max")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"price_min ({lo}) must not exceed price_max ({hi})")
        return values

    def to_engine(self) -> dict | None:
        """The filter dict the SearchEngine takes (None when no condition is set)."""
        d = {k: v for k, v in self.dict().items() if v is not None}
        return d or None


class TextSearchRequest(_Strict):
    query: str = Field(
        ...,
        description="Free text. Must contain a non-blank character. Runs of whitespace are collapsed to one "
        "space, then queries longer than params retrieval.max_query_chars (512) are truncated to that many "
        "characters; the response then says query_truncated=true.",
    )
    top_k: conint(strict=True, ge=1) = Field(10, description="1..serving.top_k_max (100)")
    retriever: Retriever = "hybrid"
    filters: Filters | None = None

    @validator("query")
    def _non_blank(cls, v: str) -> str:  # noqa: N805
        v = " ".join(v.split())     # before truncation: 600 spaces + "red dress" is "red dress"
        if not v:
            raise ValueError("query must contain at least one non-whitespace character")
        return v


class FilledAttribute(BaseModel):
    """An attribute the shop left empty, predicted from the photo (modules/attributes.py)."""

    value: str
    confidence: float


class Explain(BaseModel):
    """Per-stage scores behind a result (None where a stage did not score it), and the attributes of the item
    that were learned from its photo rather than given by the shop (``filled``, null when none)."""

    lexical: float | None = None
    dense: float | None = None
    two_tower: float | None = None
    reranker: float | None = None
    filled: dict[str, FilledAttribute] | None = None


class ResultOut(BaseModel):
    item_id: str
    title: str
    score: float
    image_url: str | None
    explain: Explain


class SearchResponseOut(BaseModel):
    results: list[ResultOut]
    latency_ms: float
    low_confidence: bool
    intents: dict = Field(default_factory=dict)
    query_truncated: bool = False
    bundle_version: str


class RecommendationOut(BaseModel):
    item_id: str
    title: str
    score: float
    image_url: str | None
    path: str = Field(..., description="which recommender produced it (e.g. two_tower, als, content, popular)")


class RecommendResponseOut(BaseModel):
    user_id: str
    items: list[RecommendationOut]
    fallback: str | None = Field(None, description="cold_user, cold_context, … when the hybrid fell back")
    feature_store: Literal["ok", "unavailable", "disabled"] = Field(
        ..., description="unavailable: the online store did not answer in time; results are content-only"
    )
    latency_ms: float
    bundle_version: str


class ItemOut(BaseModel):
    item_id: str
    title: str
    description: str = ""
    category: str | None = None
    brand: str | None = None
    price: float | None = None
    gender: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    image_url: str | None = None
    live_added: bool = False


class AddItem(_Strict):
    item_id: constr(regex=ITEM_ID_PATTERN)
    title: constr(strip_whitespace=True, min_length=1, max_length=500)
    description: constr(max_length=5000) = ""
    category: constr(strip_whitespace=True, min_length=1, max_length=100) | None = None
    brand: constr(max_length=100) | None = None
    price: confloat(ge=0) | None = None
    gender: Gender | None = None
    attributes: dict[constr(min_length=1, max_length=64), constr(max_length=500)] = Field(default_factory=dict)
    image_base64: str | None = Field(None, description="PNG/JPEG/WebP bytes, base64; capped like uploads")


class AddItemsRequest(_Strict):
    items: list[AddItem] = Field(..., min_items=1, max_items=100)

    @validator("items")
    def _unique_ids(cls, v: list[AddItem]) -> list[AddItem]:  # noqa: N805
        ids = [it.item_id for it in v]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate item_id in request: {dupes[:5]}")
        return v


class AddItemsResponse(BaseModel):
    added: list[str]
    add_to_searchable_ms: float = Field(..., description="embed + index + delta fsync, measured server-side")
    bundle_version: str


class DeleteItemResponse(BaseModel):
    deleted: str
    bundle_version: str


class ReloadResponse(BaseModel):
    swapped: bool
    version: str | None
    previous_version: str | None
    message: str
    load_ms: float | None = None


class LatencyPercentiles(BaseModel):
    count: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class ReadyResponse(BaseModel):
    ready: bool
    version: str | None
    manifest: dict | None
    loaded_at: float | None
    live_items_added: int = 0
    live_items_deleted: int = 0
    latency: LatencyPercentiles
    text_backend: str = Field(..., description="in_process or tf_serving")


class ErrorOut(BaseModel):
    detail: str | list | dict


class LookRegionOut(BaseModel):
    """One product region of a look photo and the photo-search results of its crop."""

    box: list[float] = Field(..., description="x0, y0, x1, y1 in pixels of the uploaded photo")
    label: str = Field(..., description="top, bottom, shoes, person (pose), a COCO class (detector) or object")
    confidence: float
    source: str = Field(..., description="pose (MoveNet), detector (SSD-MobileNetV2 COCO) or salient (model-free)")
    results: list[ResultOut]


class LookResponseOut(BaseModel):
    regions: list[LookRegionOut] = Field(..., description="empty when the photo shows nothing to shop")
    image_width: int
    image_height: int
    proposer: str = Field(..., description="models+salient, salient (no models) ...: what proposed the regions")
    latency_ms: float
    bundle_version: str
