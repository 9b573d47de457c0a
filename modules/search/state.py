"""The engine's state: ONE dataclass that every stage of ``modules.search`` reads (and ``live``/``persistence``
write). Row ``i`` of every per-row array describes row ``i`` of ``items``; deleted rows stay, tombstoned in
``alive`` (HNSW cannot delete).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modules.search.dense import DenseIndex, l2_normalize
from modules.search.fusion import Fusion
from modules.search.lexical import BM25Index, TfidfIndex
from modules.search.query import QueryParser
from modules.search.transformed import ItemGraph
from modules.settings import RetrievalSettings, load_section, section_dict

REQUIRED_COLUMNS = ("item_id", "title")
RECORD_DEFAULTS: dict[str, Any] = {"description": "", "category": "", "brand": "", "price": 0.0,
                                   "gender": "unisex", "image_path": "", "created_at": 0}


class UnknownItemError(KeyError):
    """An item id that the engine does not hold (or that was deleted)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown item"


def document_text(items: pd.DataFrame) -> list[str]:
    """The text of each item that is indexed and embedded: ``modules.data.data_io.item_text`` when available
    (title + description + attribute values), else the same composition done here."""
    try:
        from modules.data.data_io import item_text
    except ImportError:
        item_text = None
    if item_text is not None:
        return list(item_text(items))
    skip = {"item_id", "price", "image_path", "created_at"}
    cols = ["title", "description"] + [c for c in items.columns if c not in skip | {"title", "description"}]
    cols = [c for c in cols if c in items.columns]
    return [" ".join(str(v) for v in row if isinstance(v, str) and v.strip())
            for row in items[cols].itertuples(index=False)]


def retrieval_params(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``retrieval`` section over params.yaml's (``hnsw`` and ``photo`` merged key by key): an engine's settings
    are complete once, at build or load, so no stage carries an inline default."""
    return section_dict("retrieval", values)


def section(params: Mapping[str, Any], name: str) -> dict[str, Any]:
    """``params[name]`` from the full params dict, or ``params`` itself when it already is that section."""
    if name in params and isinstance(params[name], Mapping):
        return dict(params[name])
    return dict(params) if name == "retrieval" and "hnsw" in params else {}


def normalise_items(items: pd.DataFrame) -> pd.DataFrame:
    """Items with every record column present, string columns filled and ``price`` numeric."""
    df = items.reset_index(drop=True).copy()
    df["item_id"] = df["item_id"].astype(str)
    for col, default in RECORD_DEFAULTS.items():
        if col not in df.columns:
            df[col] = default
    df["price"] = pd.to_numeric(df["price"], errors="coerce").fillna(0.0).astype(float)
    for col in df.columns:
        if col not in ("price", "created_at"):
            df[col] = df[col].fillna("").astype(str)
    return df


@dataclass(eq=False)
class EngineState:
    """Everything a ``SearchEngine`` holds: catalog, indexes, encoders, fusion, per-row signals, calibration."""

    params: dict[str, Any]                # {"retrieval", "fusion", "encoders"} sections
    items: pd.DataFrame
    text_encoder: Any
    image_encoder: Any
    ranker: Any
    fusion: Fusion
    text_index: DenseIndex
    image_index: DenseIndex
    fused_index: DenseIndex
    bm25: BM25Index
    tfidf: TfidfIndex
    parser: QueryParser
    color_feats: np.ndarray | None        # model-free colour features of each item's photo (zero rows: no photo)
    popularity: np.ndarray                # training-window interactions per item
    item_colors: list[str]                # named dominant colour of each item's photo ("" if none)
    alive: np.ndarray                     # False: deleted or replaced (tombstone)
    live_added: np.ndarray                # True: added by add_items after the build
    filled: dict[str, dict[str, Any]]     # {item_id: {column: {"value", "confidence"}}} learned attributes
    low_conf_threshold: float | None = None
    # Transform's z-scored log price per row (``transformed``), the ranker's ``price`` feature, and the transform
    # graph it came from (applied to live-added rows). Both None: an engine saved before them (raw price serves).
    price_log_z: np.ndarray | None = None
    item_graph: ItemGraph | None = None
    # Each row's "same photo" fingerprint (``modules.encoders.fingerprint``, zeros: no photo); None: an engine built
    # or saved without them (photo queries then skip the same-photo promotion, ``same_photo``).
    photo_fingerprints: np.ndarray | None = None
    photo_category: Any = None            # photo_category.PhotoCategoryHead: a photo query's category (None: off)
    rrf_tuning: dict[str, Any] | None = None  # the text RRF weights tuned at build (``rrf_tuning``; None: not tuned)
    retrieval: RetrievalSettings = field(init=False, repr=False)  # params["retrieval"], typed (set at construction)
    # Derived per-row attributes (``refresh``) and caches.
    row_ids: np.ndarray = field(init=False, repr=False)
    id_to_row: dict[str, int] = field(init=False, repr=False)
    cat: np.ndarray = field(init=False, repr=False)
    gender: np.ndarray = field(init=False, repr=False)
    brand: np.ndarray = field(init=False, repr=False)
    price: np.ndarray = field(init=False, repr=False)
    created: np.ndarray = field(init=False, repr=False)     # created_at (unix seconds, 0 when unknown)
    title_colors: list = field(init=False, repr=False)
    patterns: list = field(init=False, repr=False)
    color_masks: dict[str, np.ndarray] = field(init=False, repr=False, default_factory=dict)
    color_evidence: dict[str, np.ndarray] = field(init=False, repr=False, default_factory=dict)  # filters.color_evidence
    dominant_masks: dict[str, np.ndarray] = field(init=False, repr=False, default_factory=dict)  # filters.dominant_mask
    color_unit_cache: np.ndarray | None = field(init=False, repr=False, default=None)
    item_colors_arr: np.ndarray | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        self.retrieval = load_section("retrieval", self.params["retrieval"])
        if (self.price_log_z is None) != (self.item_graph is None):
            raise ValueError("price_log_z and the transform graph it came from go together")
        if self.price_log_z is not None and len(self.price_log_z) != len(self.items):
            raise ValueError(f"price_log_z has {len(self.price_log_z)} rows, items has {len(self.items)}")
        if self.photo_fingerprints is not None and len(self.photo_fingerprints) != len(self.items):
            raise ValueError(f"photo_fingerprints has {len(self.photo_fingerprints)} rows, items has {len(self.items)}")
        self.refresh()

    @property
    def hp(self) -> dict[str, Any]:
        return self.params["retrieval"]

    @property
    def n_rows(self) -> int:
        return len(self.items)

    def refresh(self) -> None:
        """Per-row attributes used by intent matching (recomputed after the catalog changes)."""
        df = self.items
        self.row_ids = df["item_id"].to_numpy(dtype=object)
        self.id_to_row = {iid: r for r, iid in enumerate(self.row_ids) if self.alive[r]}
        self.cat = df["category"].str.lower().to_numpy(dtype=object)
        self.gender = df["gender"].str.lower().to_numpy(dtype=object)
        self.brand = df["brand"].str.lower().to_numpy(dtype=object)
        self.price = df["price"].to_numpy(dtype=np.float64)
        created = df["created_at"] if "created_at" in df.columns else pd.Series(0, index=df.index)
        self.created = pd.to_numeric(created, errors="coerce").fillna(0).to_numpy(dtype=np.int64)
        self.title_colors = [self.parser.colors_in(t) for t in df["title"]]
        pat_text = df["title"] + " " + df["description"] + (" " + df["pattern"] if "pattern" in df.columns else "")
        self.patterns = [self.parser.patterns_in(t) for t in pat_text]
        self.color_masks = {}
        self.color_evidence = {}
        self.dominant_masks = {}

    @property
    def price_feature(self) -> np.ndarray:
        """The re-ranker's ``price`` feature per row (training and serving both read it through the candidate
        features): Transform's ``price_log_z``; an engine saved without it keeps the raw price its ranker knows."""
        return self.price if self.price_log_z is None else self.price_log_z

    @property
    def color_unit(self) -> np.ndarray | None:
        """L2-normalised catalog colour features (rows without a photo stay zero), cached until they change."""
        if self.color_feats is None:
            return None
        cached = self.color_unit_cache
        if cached is None or len(cached) != len(self.color_feats):
            cached = l2_normalize(self.color_feats)
            self.color_unit_cache = cached
        return cached

    @property
    def item_color_names(self) -> np.ndarray:
        """``item_colors`` as an array, cached until add_items grows the catalog."""
        names = self.item_colors_arr
        if names is None or len(names) != len(self.item_colors):
            names = self.item_colors_arr = np.asarray(self.item_colors, dtype=str)
        return names


def _color_names() -> list[str]:
    from modules.encoders.color_naming import COLOR_TABLE

    return list(COLOR_TABLE)


def _check_rows(items: pd.DataFrame, **arrays: Any) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in items.columns]
    if missing:
        raise ValueError(f"items is missing column(s) {missing}")
    n = len(items)
    if n == 0:
        raise ValueError("cannot build a search engine over an empty catalog")
    for name, arr in arrays.items():
        if arr is not None and len(arr) != n:
            raise ValueError(f"{name} has {len(arr)} rows, items has {n}")
    ids = items["item_id"].astype(str)
    if ids.duplicated().any():
        raise ValueError(f"duplicate item_id(s): {ids[ids.duplicated()].head(5).tolist()}")


def build_state(items: pd.DataFrame, text_emb: np.ndarray, image_emb: np.ndarray, color_feats: np.ndarray | None,
                text_encoder: Any, image_encoder: Any, params: Mapping[str, Any], fusion: Fusion | None = None,
                ranker: Any = None, popularity: np.ndarray | None = None, item_colors: Sequence[str] | None = None,
                parser: QueryParser | None = None, filled: Mapping[str, Mapping[str, Any]] | None = None,
                price_log_z: np.ndarray | None = None, item_graph: ItemGraph | None = None,
                photo_fingerprints: np.ndarray | None = None) -> EngineState:
    """Index a catalog (see ``SearchEngine.build``)."""
    _check_rows(items, text_emb=text_emb, image_emb=image_emb, color_feats=color_feats, popularity=popularity,
                item_colors=item_colors, price_log_z=price_log_z, photo_fingerprints=photo_fingerprints)
    n = len(items)
    engine_params = {"retrieval": retrieval_params(section(params, "retrieval")), "fusion": section(params, "fusion"),
                     "encoders": section(params, "encoders")}
    items = normalise_items(items)
    text_emb = np.asarray(text_emb, dtype=np.float32)
    image_emb = np.asarray(image_emb, dtype=np.float32)
    fusion = fusion or Fusion.build("concat", text_emb, image_emb, engine_params["fusion"])
    hp = engine_params["retrieval"]
    docs = document_text(items)
    thr = hp["low_confidence_threshold"]
    return EngineState(
        params=engine_params, items=items, text_encoder=text_encoder, image_encoder=image_encoder, ranker=ranker,
        fusion=fusion,
        text_index=DenseIndex.build(text_emb, hp),
        image_index=DenseIndex.build(image_emb, hp),
        fused_index=DenseIndex.build(fusion.fuse_items(text_emb, image_emb), hp),
        color_feats=None if color_feats is None else np.asarray(color_feats, dtype=np.float32),
        bm25=BM25Index().fit(docs),
        tfidf=TfidfIndex().fit(docs),
        popularity=np.zeros(n, np.float32) if popularity is None else np.asarray(popularity, dtype=np.float32),
        item_colors=[str(c or "") for c in (item_colors if item_colors is not None else [""] * n)],
        alive=np.ones(n, dtype=bool),
        live_added=np.zeros(n, dtype=bool),
        filled={str(k): dict(v) for k, v in (filled or {}).items()},
        parser=parser or QueryParser.from_catalog(items, _color_names()),
        low_conf_threshold=None if thr is None else float(thr),
        price_log_z=None if price_log_z is None else np.asarray(price_log_z, dtype=np.float32),
        item_graph=item_graph,
        photo_fingerprints=None if photo_fingerprints is None else np.asarray(photo_fingerprints, dtype=np.uint8),
    )
