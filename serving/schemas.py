"""Request and response models of the PixelMatch HTTP API (pydantic v1).

Every request model forbids unknown keys, so a typo in a filter name is a 422 with the key
named in the message instead of a silently ignored filter, and refuses strings with an unpaired UTF-16
surrogate (valid JSON, e.g. "\\ud800", but not Unicode: tokenizers and UTF-8 writers fail on it).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

from pydantic import BaseModel, Field, confloat, conint, constr, create_model, root_validator, validator
from pydantic.errors import NumberNotGeError
from pydantic.validators import int_validator, strict_int_validator

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


def top_k_type(top_k_max: int, *, strict: bool = False) -> type[int]:
    """The ``top_k`` type of the API: an int in 1..``top_k_max`` (params ``serving.top_k_max``), built once per app.

    Query and form fields (``strict=False``) parse the string and answer ``top_k: must be between 1 and N, got X``
    for any value out of range. The JSON body (``strict=True``) takes JSON integers only; below 1 it answers
    pydantic's ``ensure this value is greater than or equal to 1``, above N the same range message. The OpenAPI
    schema shows ``minimum: 1`` and ``maximum: N``.
    """

    def at_least_one(v: int) -> int:
        if v < 1:
            raise NumberNotGeError(limit_value=1)
        return v

    def in_range(v: int) -> int:
        if not 1 <= v <= top_k_max:
            raise ValueError(f"must be between 1 and {top_k_max}, got {v}")
        return v

    class TopK(int):
        @classmethod
        def __get_validators__(cls) -> Iterator[Callable[[Any], int]]:
            yield strict_int_validator if strict else int_validator
            if strict:
                yield at_least_one
            yield in_range

        @classmethod
        def __modify_schema__(cls, schema: dict[str, Any]) -> None:
            schema.update(type="integer", minimum=1, maximum=top_k_max)

    return TopK


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
    top_k: conint(strict=True, ge=1) = Field(10, description="1..serving.top_k_max; see with_top_k_max")
    retriever: Retriever = "hybrid"
    filters: Filters | None = None
    user_id: constr(strict=True, min_length=1) | None = Field(
        None, description="the signed-in user (at most serving.events.max_id_chars): personalises the hybrid ranking with the two-tower score "
        "(explain.two_tower). A user the bundle and the online store do not know gets the ordinary answer, "
        "explain.two_tower null.")

    @classmethod
    def with_top_k_max(cls, top_k_max: int) -> type[TextSearchRequest]:
        """This model with ``top_k`` bounded by ``top_k_max`` (the one place the bound is checked; the app builds
        it from params ``serving.top_k_max``). Same name, fields, order and validators otherwise."""
        top_k = (top_k_type(top_k_max, strict=True), Field(10, description=f"1..serving.top_k_max ({top_k_max})"))
        return create_model(cls.__name__, __base__=cls, __module__=cls.__module__, top_k=top_k)

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
    that were learned from its photo rather than given by the shop (``filled``, null when none). ``same_photo``: on
    a photo query, the fingerprint distance of a result whose catalog photo is the query photo (put first), else
    null."""

    lexical: float | None = None
    dense: float | None = None
    two_tower: float | None = None
    reranker: float | None = None
    same_photo: float | None = None
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
    """The recommendations are in ``results``, like every search answer. ``items`` is the same list under the key
    /recommend used before; it is deprecated and is removed in the next release."""

    user_id: str
    results: list[RecommendationOut]
    items: list[RecommendationOut] = Field(
        ..., deprecated=True,
        description="Deprecated: the same list as `results`, kept for one release. Read `results` instead.")
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
