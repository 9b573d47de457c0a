"""SearchEngine: the one search engine used by evaluation AND serving.

Pipeline of a hybrid text query
1. hygiene: empty/whitespace -> ``ValueError("query is empty")``; longer than ``retrieval.max_query_chars`` ->
   truncated to that many characters (documented API behaviour, not an error);
2. query understanding (``QueryParser``): colour, pattern, category, gender, brand and price intents;
3. candidates, ``retrieval.candidates`` per list: BM25 (bm25s, plus the live delta index), dense text (SBERT
   query vs item text embeddings, FAISS HNSW), dense image (query in the image space vs image embeddings),
   dense fused (``Fusion`` query vs fused item embeddings);
4. weighted reciprocal rank fusion (``retrieval.rrf_k``; per-list weights ``rrf_weights`` for text,
   ``photo_rrf_weights`` for photo and ``composed_rrf_weights`` for photo + text queries), normalised to [0, 1];
   a photo query adds a ``photo`` list ranked by ``_photo_similarity`` (image-tower cosine blended with the
   model-free colour-feature cosine and a dominant-colour bonus, ``retrieval.photo``);
5. soft intent boosts: ``+ retrieval.intent_boost`` per matched intent (category, colour, pattern, gender, price);
   a colour intent matches the item title's colour OR the image's named dominant colour;
6. optional re-ranker hook ``ranker.rerank(query_ctx, candidates_df) -> scores`` over ``RANK_FEATURES``.

Filters (category, price_min, price_max, gender) are applied inside every retriever: HNSW searches only the
allowed rows (an ID selector; a small allowed subset is searched exactly) and falls back to an exact search over
the filtered subset, so a search never returns fewer than ``top_k`` results when ``top_k`` matching items exist.

Live updates: ``add_items`` embeds new records with the engine's encoders, appends them to the HNSW indexes and a
delta BM25 index; ``delete_item`` tombstones (HNSW cannot delete). Re-adding an id replaces the old version.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from modules.fusion import Fusion
from modules.query_understanding import Intents, QueryParser
from modules.ranking import query_kind
from modules.retrieval.dense import DenseIndex, l2_normalize
from modules.retrieval.filters import filter_mask, validate_filters
from modules.retrieval.hybrid import apply_reranker, rrf
from modules.retrieval.lexical import BM25Index, TfidfIndex

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
log = logging.getLogger(__name__)

RETRIEVERS = ("hybrid", "bm25", "tfidf", "text", "image", "fusion")

# Per-candidate features handed to the re-ranker (and built by ``candidate_features`` for its training data).
RANK_FEATURES: list[str] = [
    "bm25", "tfidf", "dense_text", "dense_image", "dense_fused", "rrf", "two_tower", "category_match",
    "color_match", "pattern_match", "gender_match", "price", "price_in_range", "popularity", "is_cold", "color_sim",
    "brand_match", "pre_rerank", "has_text", "has_image",
]
_REQUIRED_COLUMNS = ("item_id", "title")
_RECORD_DEFAULTS: dict[str, Any] = {"description": "", "category": "", "brand": "", "price": 0.0,
                                     "gender": "unisex", "image_path": "", "created_at": 0}


def _take(columns: Mapping[str, np.ndarray], order: np.ndarray) -> dict[str, np.ndarray]:
    """Every column reordered by ``order``."""
    return {name: values[order] for name, values in columns.items()}


class UnknownItemError(KeyError):
    """An item id that the engine does not hold (or that was deleted)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown item"


@dataclass
class Result:
    item_id: str
    score: float
    explain: dict[str, float | None] = field(default_factory=dict)


@dataclass
class SearchResponse:
    results: list[Result]
    low_confidence: bool
    intents: dict
    latency_ms: float
    retriever: str

    @property
    def item_ids(self) -> list[str]:
        return [r.item_id for r in self.results]


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


def _section(params: Mapping[str, Any], name: str) -> dict[str, Any]:
    """``params[name]`` from the full params dict, or ``params`` itself when it already is that section."""
    if name in params and isinstance(params[name], Mapping):
        return dict(params[name])
    return dict(params) if name == "retrieval" and "hnsw" in params else {}


def _encoder_kind(encoder: Any) -> str:
    """How a saved engine finds its image encoder again: backbone (LiT), clip, color or tower."""
    if hasattr(encoder, "text_to_image_space"):
        return "backbone"
    if hasattr(encoder, "encode_texts"):
        return "clip"
    return "color" if getattr(encoder, "name", "") == "color" else "tower"


def _color_names() -> list[str]:
    from modules.encoders.color import COLOR_TABLE

    return list(COLOR_TABLE)


class SearchEngine:
    """Hybrid lexical + dense product search over one catalog (see the module docstring)."""

    # ------------------------------------------------------------------------------------------------ construction
    def __init__(self) -> None:  # use SearchEngine.build or SearchEngine.load
        self.items: pd.DataFrame
        self.params: dict[str, Any] = {}
        self.low_conf_threshold: float | None = None

    @classmethod
    def build(cls, items: pd.DataFrame, text_emb: np.ndarray, image_emb: np.ndarray, color_feats: np.ndarray | None,
              text_encoder: Any, image_encoder: Any, params: Mapping[str, Any], fusion: Fusion | None = None,
              ranker: Any = None, popularity: np.ndarray | None = None, item_colors: Sequence[str] | None = None,
              parser: QueryParser | None = None, filled: Mapping[str, Mapping[str, Any]] | None = None
              ) -> SearchEngine:
        """Index a catalog. Row ``i`` of every array describes row ``i`` of ``items``.

        ``params``: the full params dict (``retrieval``/``fusion`` sections are read). ``fusion`` defaults to
        ``concat`` (needs no training). ``item_colors``: named dominant colour of each item's image ("" if none).
        ``filled``: ``{item_id: {column: {"value", "confidence"}}}`` of attributes learned from the catalog's labels
        (shown in ``explain["filled"]``).
        """
        missing = [c for c in _REQUIRED_COLUMNS if c not in items.columns]
        if missing:
            raise ValueError(f"items is missing column(s) {missing}")
        n = len(items)
        if n == 0:
            raise ValueError("cannot build a search engine over an empty catalog")
        for name, arr in (("text_emb", text_emb), ("image_emb", image_emb), ("color_feats", color_feats),
                          ("popularity", popularity), ("item_colors", item_colors)):
            if arr is not None and len(arr) != n:
                raise ValueError(f"{name} has {len(arr)} rows, items has {n}")
        ids = items["item_id"].astype(str)
        if ids.duplicated().any():
            raise ValueError(f"duplicate item_id(s): {ids[ids.duplicated()].head(5).tolist()}")
        self = cls()
        self.params = {"retrieval": _section(params, "retrieval"), "fusion": _section(params, "fusion"),
                       "encoders": _section(params, "encoders")}
        self.items = cls._normalise_items(items)
        self.text_encoder, self.image_encoder, self.ranker = text_encoder, image_encoder, ranker
        text_emb = np.asarray(text_emb, dtype=np.float32)
        image_emb = np.asarray(image_emb, dtype=np.float32)
        self.fusion = fusion or Fusion.build("concat", text_emb, image_emb, self.params["fusion"])
        hp = self.params["retrieval"]
        self.text_index = DenseIndex.build(text_emb, hp)
        self.image_index = DenseIndex.build(image_emb, hp)
        self.fused_index = DenseIndex.build(self.fusion.fuse_items(text_emb, image_emb), hp)
        self.color_feats = None if color_feats is None else np.asarray(color_feats, dtype=np.float32)
        self._color_unit_cache = None
        docs = document_text(self.items)
        self.bm25 = BM25Index().fit(docs)
        self.tfidf = TfidfIndex().fit(docs)
        self.popularity = (np.zeros(n, np.float32) if popularity is None
                           else np.asarray(popularity, dtype=np.float32))
        self.item_colors = [str(c or "") for c in (item_colors if item_colors is not None else [""] * n)]
        self.alive = np.ones(n, dtype=bool)
        self.live_added = np.zeros(n, dtype=bool)
        self.filled = {str(k): dict(v) for k, v in (filled or {}).items()}
        self.parser = parser or QueryParser.from_catalog(self.items, _color_names())
        self._refresh_attributes()
        thr = hp.get("low_confidence_threshold")
        self.low_conf_threshold = None if thr is None else float(thr)
        return self

    @staticmethod
    def _normalise_items(items: pd.DataFrame) -> pd.DataFrame:
        df = items.reset_index(drop=True).copy()
        df["item_id"] = df["item_id"].astype(str)
        for col, default in _RECORD_DEFAULTS.items():
            if col not in df.columns:
                df[col] = default
        df["price"] = pd.to_numeric(df["price"], errors="coerce").fillna(0.0).astype(float)
        for col in df.columns:
            if col not in ("price", "created_at"):
                df[col] = df[col].fillna("").astype(str)
        return df

    def _refresh_attributes(self) -> None:
        """Per-row attributes used by intent matching (recomputed after add_items)."""
        df = self.items
        self.row_ids = df["item_id"].to_numpy(dtype=object)
        self.id_to_row = {iid: r for r, iid in enumerate(self.row_ids) if self.alive[r]}
        self.cat = df["category"].str.lower().to_numpy(dtype=object)
        self.gender = df["gender"].str.lower().to_numpy(dtype=object)
        self.brand = df["brand"].str.lower().to_numpy(dtype=object)
        self.price = df["price"].to_numpy(dtype=np.float64)
        self.title_colors = [self.parser.colors_in(t) for t in df["title"]]
        pat_text = df["title"] + " " + df["description"] + (" " + df["pattern"] if "pattern" in df.columns else "")
        self.patterns = [self.parser.patterns_in(t) for t in pat_text]
        self._color_masks: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------------------------------------ helpers
    @property
    def hp(self) -> dict[str, Any]:
        return self.params["retrieval"]

    @property
    def n_rows(self) -> int:
        return len(self.items)

    def _clean_query(self, query: Any) -> str:
        if not isinstance(query, str):
            raise ValueError(f"query must be a string, got {type(query).__name__}")
        q = " ".join(query.split())
        if not q:
            raise ValueError("query is empty")
        return q[: int(self.hp.get("max_query_chars", 512))]

    @staticmethod
    def _check_top_k(top_k: Any) -> int:
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        return int(top_k)

    def _allowed(self, filters: Mapping[str, Any] | None, intents: Intents | None = None) -> np.ndarray:
        mask = self.alive.copy()
        fm = filter_mask(self.items, validate_filters(filters))
        if fm is not None:
            mask &= fm
        if intents is not None:  # hard intents
            if intents.category:
                mask &= self.cat == intents.category
            if intents.gender:
                mask &= (self.gender == intents.gender) | (self.gender == "unisex")
            if intents.price_min is not None:
                mask &= self.price >= intents.price_min
            if intents.price_max is not None:
                mask &= self.price <= intents.price_max
            if intents.color:
                mask &= self._color_mask(intents.color)
        return mask

    def _color_mask(self, color: str) -> np.ndarray:
        """Rows whose title colour or image dominant colour is ``color`` (cached until the catalog changes)."""
        if color not in self._color_masks:
            self._color_masks[color] = self._color_match(np.arange(self.n_rows), color).astype(bool)
        return self._color_masks[color]

    def _color_match(self, rows: np.ndarray, color: str | None) -> np.ndarray:
        if not color:
            return np.zeros(len(rows), np.float32)
        return np.array([color in self.title_colors[r] or self.item_colors[r] == color for r in rows], np.float32)

    @property
    def _color_unit(self) -> np.ndarray | None:
        """L2-normalised catalog colour features (rows without a photo stay zero), cached until they change."""
        if self.color_feats is None:
            return None
        cached = getattr(self, "_color_unit_cache", None)
        if cached is None or len(cached) != len(self.color_feats):
            cached = l2_normalize(self.color_feats)
            self._color_unit_cache = cached
        return cached

    def _photo_similarity(self, img: Image.Image, q_photo: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
        """Image -> image similarity of a query photo to every row, with the colour-feature cosine and the photo's
        named dominant colour: ``retrieval.photo.tower_weight * cos(tower) + color_weight * cos(colour features)
        + dominant_color_bonus * [same dominant colour]``. The model-free colour features (background removed,
        exposure-normalised for busy scenes) are robust to a shopper's clutter and lighting, where the tower's
        view of shape is not; weights tuned on TRAIN image queries (params.yaml)."""
        from modules.encoders.color import color_features_and_name

        cfg = dict(self.hp.get("photo", {}))
        w_tower = float(cfg.get("tower_weight", 0.25))
        w_color = float(cfg.get("color_weight", 0.75))
        bonus = float(cfg.get("dominant_color_bonus", 0.1))
        img = img.convert("RGB")
        q_color, dominant = color_features_and_name(img, self.params.get("encoders", {}).get("color"))
        tower_sim = self.image_index.vectors @ l2_normalize(q_photo).ravel()
        unit = self._color_unit
        if unit is None:
            color_sim = np.zeros(self.n_rows, np.float32)
        else:
            color_sim = unit @ l2_normalize(q_color).ravel()
        names = getattr(self, "_item_colors_arr", None)
        if names is None or len(names) != len(self.item_colors):  # cached until add_items grows the catalog
            names = self._item_colors_arr = np.asarray(self.item_colors, dtype=str)
        same = (names == dominant).astype(np.float32)
        return (w_tower * tower_sim + w_color * color_sim + bonus * same).astype(np.float32), color_sim, dominant

    def _image_space_text(self, text: str, text_vec: np.ndarray) -> np.ndarray | None:
        """The text query in the image-embedding space: CLIP's own text encoder, else the SBERT vector (the
        trained tower is aligned to the SBERT space). ``None`` when the image space is not text-aligned (e.g. the
        model-free colour encoder): text queries then skip the image list."""
        enc = self.image_encoder
        if enc is not None and hasattr(enc, "text_to_image_space"):  # LiT head: the MiniLM vector is enough
            return np.asarray(enc.text_to_image_space(text_vec), dtype=np.float32)
        if enc is not None and hasattr(enc, "encode_texts"):
            return np.asarray(enc.encode_texts([text]), dtype=np.float32)[0]
        if self.image_index.dim != text_vec.shape[0]:
            return None
        return text_vec

    def _encode_photo(self, img: Any) -> np.ndarray:
        if not isinstance(img, Image.Image):
            raise ValueError(f"image must be a PIL.Image, got {type(img).__name__}")
        if self.image_encoder is None:
            raise ValueError("this engine has no image encoder; image search is unavailable")
        img = img.convert("RGB")
        cfg = self.hp.get("photo", {})
        if cfg.get("crop_busy_scenes"):  # a shopper's photo: embed the product, not the street around it
            from modules.encoders.color import subject_box

            box = subject_box(img, float(cfg["crop_margin"]), float(cfg["crop_percentile"]))
            img = img.crop(box) if box else img
        return np.asarray(self.image_encoder.encode_images([img]), dtype=np.float32)[0]

    @staticmethod
    def _top_from_scores(scores: np.ndarray, allowed: np.ndarray, k: int, positive_only: bool = True) -> np.ndarray:
        s = np.where(allowed, scores, -np.inf)
        cand = np.flatnonzero(s > 0) if positive_only else np.flatnonzero(allowed)
        if len(cand) == 0:
            return cand
        order = np.lexsort((cand, -s[cand]))
        return cand[order][:k]

    # ------------------------------------------------------------------------------------------------ core
    def _candidates(self, text: str | None, img: Image.Image | None, image_weight: float,
                    filters: Mapping[str, Any] | None, hard_intents: bool, context: Mapping[str, Any] | None
                    ) -> tuple[dict[str, np.ndarray], Intents, dict[str, Any]]:
        """The hybrid candidate set, best first, as columns of equal length: ``item_id``, ``row``,
        ``RANK_FEATURES`` and the pre-rerank ``score`` (numpy arrays rather than a DataFrame: at serving
        sizes the DataFrame bookkeeping cost more than the retrieval it described)."""
        intents = self.parser.parse(text) if text else Intents()
        retrieval_text = (intents.residual_text or text) if text else ""
        allowed = self._allowed(filters, intents if hard_intents else None)
        pool = int(self.hp.get("candidates", 200))

        q_text = np.asarray(self.text_encoder.encode_query(retrieval_text), np.float32) if text else None
        q_photo = self._encode_photo(img) if img is not None else None
        q_img_text = self._image_space_text(retrieval_text, q_text) if q_text is not None else None
        if q_photo is not None and q_img_text is not None:
            q_image = l2_normalize(image_weight * l2_normalize(q_photo).ravel()
                                   + (1 - image_weight) * l2_normalize(q_img_text).ravel()).ravel()
        else:
            q_image = q_photo if q_photo is not None else q_img_text  # None: text query, unaligned image space
        if q_photo is None and q_text is not None:
            q_fused = self.fusion.query_vector(q_text, q_img_text if hasattr(self.image_encoder, "encode_texts")
                                               else None)
        else:  # a photo (possibly with a text modifier): the image-space query speaks for the image half
            photo_side = q_image if q_image is not None else q_photo
            text_half = q_text if q_text is not None else (
                photo_side if photo_side.shape[0] == self.fusion.text_dim
                else np.zeros(self.fusion.text_dim, np.float32))
            q_fused = self.fusion.query_vector(text_half, photo_side)
        n = self.n_rows
        color_sim = np.zeros(n, np.float32)
        photo_sim = None
        if q_photo is not None:
            photo_sim, color_sim, dominant = self._photo_similarity(img, q_photo)
            if not intents.color and text is None and self.hp.get("photo", {}).get("dominant_color_intent", True):
                intents.color = dominant  # model-free colour intent of a photo query

        lists: dict[str, np.ndarray] = {}
        bm25 = self.bm25.scores(retrieval_text, n) if text else np.zeros(n, np.float32)
        if text and img is None:
            lists["bm25"] = self._top_from_scores(bm25, allowed, pool)
            lists["text"] = self.text_index.search(q_text, pool, allowed)[1]
        if q_image is not None:
            lists["image"] = self.image_index.search(q_image, pool, allowed)[1]
        if photo_sim is not None and text is None:
            lists["photo"] = self._top_from_scores(photo_sim, allowed, pool, positive_only=False)
        lists["fusion"] = self.fused_index.search(q_fused, pool, allowed)[1]
        if q_photo is not None and text and intents.color:
            # "like this but in navy": the items nearest to the photo among those of the requested colour.
            in_color = allowed & self._color_mask(intents.color)
            lists["image_in_color"] = self.image_index.search(q_photo, pool, in_color)[1]
        # each query kind has its own list weights (tuned on TRAIN queries of that kind)
        weights_key = "rrf_weights" if img is None else ("photo_rrf_weights" if text is None else "composed_rrf_weights")
        weights = dict(self.hp.get(weights_key) or {})
        fused = rrf(lists, k=int(self.hp.get("rrf_k", 60)), weights=weights)
        rows = np.array(sorted(fused), dtype=np.int64)
        if len(rows) == 0:
            empty = {c: np.zeros(0, np.float64) for c in ("row", "score", *RANK_FEATURES)}
            return {**empty, "item_id": np.zeros(0, object), "row": rows}, intents, {}

        two_tower = (context or {}).get("two_tower") or {}
        m = len(rows)

        def col(value: Any) -> np.ndarray:  # a scalar feature broadcast to one value per candidate
            return np.full(m, value, np.float64) if np.ndim(value) == 0 else np.asarray(value)

        ids = self.row_ids[rows]
        price = self.price[rows]
        feats: dict[str, np.ndarray] = {
            "item_id": ids,
            "row": rows,
            "bm25": bm25[rows],
            "tfidf": self.tfidf.scores_rows(retrieval_text, rows) if text else np.zeros(m, np.float32),
            "dense_text": col(self.text_index.score(q_text, rows) if q_text is not None else 0.0),
            "dense_image": col(self.image_index.score(q_image, rows) if q_image is not None else 0.0),
            "dense_fused": col(self.fused_index.score(q_fused, rows)),
            "rrf": np.fromiter((fused[int(r)] for r in rows), np.float64, m),
            "two_tower": (np.fromiter((float(two_tower.get(i, 0.0)) for i in ids), np.float64, m) if two_tower
                          else np.zeros(m, np.float64)),
            "category_match": col((self.cat[rows] == intents.category).astype(np.float32) if intents.category
                                  else 0.0),
            "color_match": col(self._color_match(rows, intents.color)),
            "pattern_match": col(np.fromiter((intents.pattern in self.patterns[r] for r in rows), np.float32, m)
                                 if intents.pattern else 0.0),
            "gender_match": col(((self.gender[rows] == intents.gender) * 1.0
                                 + (self.gender[rows] == "unisex") * 0.5).astype(np.float32)
                                if intents.gender else 0.0),
            "price": price,
            "price_in_range": ((price >= (intents.price_min or 0.0))
                               & (price <= (intents.price_max if intents.price_max is not None else np.inf))
                               ).astype(np.float32),
            "popularity": self.popularity[rows],
            "is_cold": ((self.popularity[rows] <= 0) | self.live_added[rows]).astype(np.float32),
            "color_sim": color_sim[rows],
            # Soft boosts: only intents the query actually expressed count.
            "brand_match": col((self.brand[rows] == intents.brand).astype(np.float32) if intents.brand else 0.0),
            "has_text": col(float(bool(text))),  # query kind
            "has_image": col(float(img is not None)),
        }
        matched = np.zeros(m)
        for name, present in (("category_match", intents.category), ("color_match", intents.color),
                              ("pattern_match", intents.pattern), ("gender_match", intents.gender),
                              ("price_in_range", intents.price_min is not None or intents.price_max is not None),
                              ("brand_match", intents.brand)):
            if present:
                matched += feats[name].astype(np.float64)
        feats["score"] = feats["rrf"] / feats["rrf"].max() + float(self.hp.get("intent_boost", 0.15)) * matched
        feats["pre_rerank"] = feats["score"]  # the hybrid order the re-ranker starts from
        qctx = {"query": text or "", "intents": intents.to_dict(), "filters": dict(filters or {}),
                "has_image": img is not None, "context": dict(context or {})}
        return _take(feats, np.lexsort((rows, -feats["score"]))), intents, qctx

    def _respond(self, feats: dict[str, np.ndarray], intents: Intents, qctx: dict[str, Any], top_k: int,
                 retriever: str, t0: float, lexical_ran: bool, rerank: bool = True) -> SearchResponse:
        reranker_scores = None
        kind = query_kind(bool(qctx.get("query")), bool(qctx.get("has_image")))
        applies = getattr(self.ranker, "applies_to", None)
        if applies is not None and not applies(kind):
            rerank = False  # the ranker did not beat the hybrid order on this kind's validation queries
        n = len(feats["row"])
        if rerank and self.ranker is not None and n:
            reranker_scores = apply_reranker(self.ranker, {**qctx, "retriever": retriever},
                                             pd.DataFrame({c: feats[c] for c in ("item_id", *RANK_FEATURES)}))
            feats = _take({**feats, "reranker": reranker_scores},
                          np.lexsort((feats["row"], -feats["score"], -reranker_scores)))
        two_tower_ran = bool(qctx.get("context", {}).get("two_tower"))
        dense = np.maximum(np.maximum(feats["dense_text"], feats["dense_image"]), feats["dense_fused"])
        results = [Result(item_id=str(feats["item_id"][i]),
                          score=float(feats["reranker"][i] if reranker_scores is not None else feats["score"][i]),
                          explain={"lexical": float(feats["bm25"][i]) if lexical_ran else None,
                                   "dense": float(dense[i]),
                                   "two_tower": float(feats["two_tower"][i]) if two_tower_ran else None,
                                   "reranker": float(feats["reranker"][i]) if reranker_scores is not None else None,
                                   "rrf": float(feats["rrf"][i]), "pre_rerank": float(feats["score"][i])}
                          | self._filled_explain(str(feats["item_id"][i])))
                   for i in range(min(top_k, n))]
        confidence = float(feats["dense_text"].max()) if qctx.get("query") and n else None
        return SearchResponse(results=results, low_confidence=self._is_low_confidence(confidence),
                              intents=intents.to_dict(), latency_ms=(time.perf_counter() - t0) * 1000.0,
                              retriever=retriever)

    def _filled_explain(self, item_id: str) -> dict[str, Any]:
        """``{"filled": {column: {"value", "confidence"}}}`` for an item whose attributes were learned, else {}."""
        filled = getattr(self, "filled", None) or {}
        return {"filled": filled[item_id]} if item_id in filled else {}

    def _is_low_confidence(self, confidence: float | None) -> bool:
        return (self.low_conf_threshold is not None and confidence is not None
                and confidence < self.low_conf_threshold)

    # ------------------------------------------------------------------------------------------------ public API
    def search_text(self, query: str, top_k: int = 10, retriever: str = "hybrid",
                    filters: Mapping[str, Any] | None = None, hard_intents: bool = False,
                    context: Mapping[str, Any] | None = None, rerank: bool = True) -> SearchResponse:
        """Text search. ``retriever``: hybrid | bm25 | tfidf | text | image | fusion (single retrievers are the
        benchmark baselines: no intent boosts, no re-ranker). ``hard_intents`` turns parsed intents into filters.
        ``context`` may carry ``two_tower``: {item_id: score} for a signed-in user. ``rerank=False`` skips the
        re-ranker hook (hybrid only; it runs when the engine has a ranker). Queries longer than
        ``retrieval.max_query_chars`` are truncated."""
        t0 = time.perf_counter()
        q = self._clean_query(query)
        top_k = self._check_top_k(top_k)
        if retriever not in RETRIEVERS:
            raise ValueError(f"unknown retriever {retriever!r}; choose from {list(RETRIEVERS)}")
        if retriever == "hybrid":
            feats, intents, qctx = self._candidates(q, None, 0.0, filters, hard_intents, context)
            return self._respond(feats, intents, qctx, top_k, retriever, t0, lexical_ran=True, rerank=rerank)

        intents = self.parser.parse(q)
        allowed = self._allowed(filters, intents if hard_intents else None)
        text = intents.residual_text or q
        explain_key = "lexical" if retriever in ("bm25", "tfidf") else "dense"
        confidence = None
        if retriever in ("bm25", "tfidf"):
            scores = self.bm25.scores(text, self.n_rows) if retriever == "bm25" else self.tfidf.scores(text)
            rows = self._top_from_scores(scores, allowed, top_k)
            vals = scores[rows]
        else:
            q_text = np.asarray(self.text_encoder.encode_query(text), np.float32)
            if retriever == "text":
                vals, rows = self.text_index.search(q_text, top_k, allowed)
            elif retriever == "image":
                q_img = self._image_space_text(text, q_text)
                if q_img is None:
                    raise ValueError("retriever 'image' needs a text-aligned image encoder (image tower or CLIP)")
                vals, rows = self.image_index.search(q_img, top_k, allowed)
            else:
                img_q = self._image_space_text(text, q_text) if hasattr(self.image_encoder, "encode_texts") else None
                vals, rows = self.fused_index.search(self.fusion.query_vector(q_text, img_q), top_k, allowed)
            confidence = float(self.text_index.search(q_text, 1, self.alive)[0].max(initial=-1.0))
        results = [Result(str(self.row_ids[r]), float(v),
                          {"lexical": None, "dense": None, "two_tower": None, "reranker": None} | {explain_key: float(v)})
                   for v, r in zip(vals, rows, strict=True)]
        return SearchResponse(results, self._is_low_confidence(confidence), intents.to_dict(),
                              (time.perf_counter() - t0) * 1000.0, retriever)

    def search_image(self, img: Image.Image, top_k: int = 10, filters: Mapping[str, Any] | None = None,
                     context: Mapping[str, Any] | None = None, rerank: bool = True) -> SearchResponse:
        """Query by photo: image and fused dense lists fused with RRF, boosted by the photo's dominant colour."""
        t0 = time.perf_counter()
        top_k = self._check_top_k(top_k)
        feats, intents, qctx = self._candidates(None, img, 1.0, filters, False, context)
        return self._respond(feats, intents, qctx, top_k, "image_query", t0, lexical_ran=False, rerank=rerank)

    def search_multimodal(self, text: str, img: Image.Image, image_weight: float | None = None, top_k: int = 10,
                          filters: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None,
                          rerank: bool = True) -> SearchResponse:
        """Composed query ("like this but in navy"): ``image_weight * photo + (1 - image_weight) * text`` in the
        image space (default ``retrieval.composed_image_weight``), plus the text's intents (its colour) as boosts.
        An empty text makes it a plain photo query."""
        t0 = time.perf_counter()
        if isinstance(text, str) and not text.strip():
            return self.search_image(img, top_k=top_k, filters=filters, context=context, rerank=rerank)
        q = self._clean_query(text)
        top_k = self._check_top_k(top_k)
        w = float(self.hp.get("composed_image_weight", 0.5) if image_weight is None else image_weight)
        if not math.isfinite(w) or not 0.0 <= w <= 1.0:
            raise ValueError(f"image_weight must be in [0, 1], got {image_weight!r}")
        feats, intents, qctx = self._candidates(q, img, w, filters, False, context)
        return self._respond(feats, intents, qctx, top_k, "multimodal", t0, lexical_ran=False, rerank=rerank)

    def similar(self, item_id: str, top_k: int = 10, filters: Mapping[str, Any] | None = None) -> SearchResponse:
        """Items most similar to ``item_id`` by fused embedding (the item itself excluded)."""
        t0 = time.perf_counter()
        top_k = self._check_top_k(top_k)
        row = self.id_to_row.get(str(item_id))
        if row is None:
            raise UnknownItemError(f"unknown item_id {item_id!r}")
        allowed = self._allowed(filters)
        allowed[row] = False
        vals, rows = self.fused_index.search(self.fused_index.vectors[row], top_k, allowed)
        results = [Result(str(self.row_ids[r]), float(v), {"lexical": None, "dense": float(v), "two_tower": None,
                                                           "reranker": None})
                   for v, r in zip(vals, rows, strict=True)]
        return SearchResponse(results, False, {}, (time.perf_counter() - t0) * 1000.0, "similar")

    def candidate_features(self, query: str | Mapping[str, Any], top_k: int | None = None,
                           filters: Mapping[str, Any] | None = None, data_dir: str | Path | None = None,
                           context: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """The serving features of the hybrid candidates (before re-ranking), best first: ``item_id``,
        ``RANK_FEATURES`` and ``score`` (the pre-rerank score). ``query`` is a text or a queries.jsonl record
        (``kind`` text/image/composed; ``image_path`` relative to ``data_dir``). ``top_k`` caps the rows."""
        text: str | None
        img = None
        if isinstance(query, Mapping):
            text = str(query.get("text") or "").strip() or None
            if query.get("image_path"):
                if data_dir is None:
                    raise ValueError("an image query needs data_dir to resolve image_path")
                from modules.data.images import load_image

                img = load_image(Path(data_dir) / str(query["image_path"]))
        else:
            text = query
        if text is not None:
            text = self._clean_query(text)
        if text is None and img is None:
            raise ValueError("query is empty")
        w = float(self.hp.get("composed_image_weight", 0.5)) if (text and img is not None) else 1.0
        feats, _, _ = self._candidates(text, img, w, filters, False, context)
        out = pd.DataFrame({c: feats[c] for c in ("item_id", *RANK_FEATURES, "score")})
        return out.head(top_k).reset_index(drop=True) if top_k else out

    def query_confidence(self, query: str) -> float:
        """Best dense (text) cosine of the query: the signal behind ``low_confidence``."""
        q = self._clean_query(query)
        vec = np.asarray(self.text_encoder.encode_query(self.parser.parse(q).residual_text or q), np.float32)
        vals, _ = self.text_index.search(vec, 1, self.alive)
        return float(vals.max(initial=-1.0))

    # ------------------------------------------------------------------------------------------------ live updates
    def add_items(self, records: Sequence[Mapping[str, Any]], images: Sequence[Image.Image | None] | None = None
                  ) -> list[str]:
        """Embed and index new items (searchable on the next call). An existing ``item_id`` is replaced."""
        if not records:
            return []
        images = list(images) if images is not None else [None] * len(records)
        if len(images) != len(records):
            raise ValueError(f"{len(records)} records but {len(images)} images")
        rows = []
        for rec in records:
            if not isinstance(rec, Mapping):
                raise ValueError("each record must be a mapping")
            iid = str(rec.get("item_id", "")).strip()
            title = str(rec.get("title", "")).strip()
            if not iid or not title:
                raise ValueError("each record needs a non-empty item_id and title")
            price = rec.get("price", 0.0)
            try:
                price = float(price)
            except (TypeError, ValueError):
                raise ValueError(f"item {iid}: price must be a number, got {price!r}") from None
            if not math.isfinite(price) or price < 0:
                raise ValueError(f"item {iid}: price must be a finite number >= 0")
            rows.append({**_RECORD_DEFAULTS, **{k: v for k, v in rec.items() if v is not None}, "item_id": iid,
                         "title": title, "price": price})
        ids = [r["item_id"] for r in rows]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate item_id in one add_items call")
        new = self._normalise_items(pd.DataFrame(rows))
        docs = document_text(new)
        text_emb = np.asarray(self.text_encoder.encode(docs), np.float32)
        image_emb = np.zeros((len(new), self.image_index.dim), np.float32)
        colors = [""] * len(new)
        color_rows = []
        for j, img in enumerate(images):
            if img is None:
                if self.color_feats is not None:
                    color_rows.append(np.zeros(self.color_feats.shape[1], np.float32))
                continue
            if not isinstance(img, Image.Image):
                raise ValueError(f"images[{j}] must be a PIL.Image or None")
            from modules.encoders.color import color_features_and_name

            img = img.convert("RGB")
            if self.image_encoder is not None:
                image_emb[j] = self.image_encoder.encode_images([img])[0]
            feats, colors[j] = color_features_and_name(img, self.params.get("encoders", {}).get("color"))
            if self.color_feats is not None:
                color_rows.append(feats)

        for iid in ids:  # replacement: tombstone the old version
            old = self.id_to_row.get(iid)
            if old is not None:
                self.alive[old] = False
        start = self.n_rows
        new_rows = list(range(start, start + len(new)))
        self.items = pd.concat([self.items, new], ignore_index=True)
        for col in self.items.columns:
            if col not in ("price", "created_at"):
                self.items[col] = self.items[col].fillna("").astype(str)
        self.text_index.add(text_emb)
        self.image_index.add(image_emb)
        self.fused_index.add(self.fusion.fuse_items(text_emb, image_emb))
        if self.color_feats is not None:
            self.color_feats = np.vstack([self.color_feats, np.stack(color_rows).astype(np.float32)])
        self.bm25.add(docs, new_rows)
        self.tfidf.add(docs)
        self.popularity = np.concatenate([self.popularity, np.zeros(len(new), np.float32)])
        self.item_colors.extend(colors)
        self.alive = np.concatenate([self.alive, np.ones(len(new), bool)])
        self.live_added = np.concatenate([self.live_added, np.ones(len(new), bool)])
        self._refresh_attributes()
        return ids

    def delete_item(self, item_id: str) -> None:
        """Tombstone an item: it disappears from every result from the next call on."""
        row = self.id_to_row.pop(str(item_id), None)
        if row is None:
            raise UnknownItemError(f"unknown item_id {item_id!r}")
        self.alive[row] = False

    def __contains__(self, item_id: object) -> bool:
        return str(item_id) in self.id_to_row

    def __len__(self) -> int:
        return len(self.id_to_row)

    # ------------------------------------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write the engine to ``directory`` (the bundle's ``search/``). The image tower itself is saved by the
        pipeline next to it under ``image_tower/``; here only its reference is recorded."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.items.to_parquet(d / "items.parquet", index=False)
        self.text_index.save(d / "text_index")
        self.image_index.save(d / "image_index")
        self.fused_index.save(d / "fused_index")
        if self.color_feats is not None:
            np.save(d / "color_feats.npy", self.color_feats)
        np.save(d / "popularity.npy", self.popularity)
        self.bm25.save(d / "bm25")
        self.tfidf.save(d / "tfidf.pkl")
        self.fusion.save(d / "fusion")
        (d / "calibration.json").write_text(json.dumps({"low_confidence_threshold": self.low_conf_threshold}))
        (d / "query_parser.json").write_text(json.dumps(self.parser.to_json()))
        (d / "filled_attributes.json").write_text(json.dumps(getattr(self, "filled", {})))
        enc = self.image_encoder
        state = {
            "format": 1,
            "params": self.params,
            "alive": self.alive.astype(int).tolist(),
            "live_added": self.live_added.astype(int).tolist(),
            "item_colors": self.item_colors,
            "text_encoder": getattr(self.text_encoder, "name", None),
            "image_encoder": None if enc is None else {
                "class": type(enc).__name__, "name": getattr(enc, "name", None),
                "kind": _encoder_kind(enc), "dir": "image_tower"},
        }
        (d / "engine.json").write_text(json.dumps(state))
        return d

    @classmethod
    def load(cls, directory: str | Path, params: Mapping[str, Any] | None = None, text_encoder: Any = None,
             image_encoder: Any = None, ranker: Any = None) -> SearchEngine:
        """Load a saved engine (no TFX needed). Encoders not passed are rebuilt from params / the bundle:
        the text encoder from ``encoders.text``, the image tower from ``<directory>/image_tower`` (or the sibling
        ``../image_tower``), CLIP from ``encoders.image.clip_model``."""
        d = Path(directory)
        if not (d / "engine.json").is_file():
            raise FileNotFoundError(f"{d} is not a saved SearchEngine (no engine.json)")
        state = json.loads((d / "engine.json").read_text())
        self = cls()
        self.params = dict(state["params"])
        if params is not None:
            for name in ("retrieval", "fusion", "encoders"):
                if _section(params, name):
                    self.params[name] = _section(params, name)
        self.items = pd.read_parquet(d / "items.parquet")
        ef = int(self.hp.get("hnsw", {}).get("ef_search", 128))
        below = int(self.hp.get("hnsw", {}).get("filter_exact_below", 0))
        self.text_index = DenseIndex.load(d / "text_index", ef, below)
        self.image_index = DenseIndex.load(d / "image_index", ef, below)
        self.fused_index = DenseIndex.load(d / "fused_index", ef, below)
        self.color_feats = np.load(d / "color_feats.npy") if (d / "color_feats.npy").is_file() else None
        self._color_unit_cache = None
        self.popularity = np.load(d / "popularity.npy")
        self.bm25 = BM25Index.load(d / "bm25")
        self.tfidf = TfidfIndex.load(d / "tfidf.pkl")
        self.fusion = Fusion.load(d / "fusion")
        self.low_conf_threshold = json.loads((d / "calibration.json").read_text())["low_confidence_threshold"]
        self.parser = QueryParser.from_json(json.loads((d / "query_parser.json").read_text()))
        self.alive = np.asarray(state["alive"], dtype=bool)
        self.live_added = np.asarray(state["live_added"], dtype=bool)
        self.item_colors = list(state["item_colors"])
        filled_path = d / "filled_attributes.json"
        self.filled = json.loads(filled_path.read_text()) if filled_path.is_file() else {}
        self.ranker = ranker
        if text_encoder is None:
            from modules.encoders.text import text_encoder_from_params

            text_encoder = text_encoder_from_params({"encoders": self.params.get("encoders", {})})
        self.text_encoder = text_encoder
        self.image_encoder = image_encoder if image_encoder is not None else cls._load_image_encoder(d, state)
        self._refresh_attributes()
        return self

    @staticmethod
    def _load_image_encoder(d: Path, state: Mapping[str, Any]) -> Any:
        ref = state.get("image_encoder")
        if not ref:
            return None
        if ref.get("kind") == "clip":
            from modules.encoders.clip import ClipEncoder

            clip_model = state["params"].get("encoders", {}).get("image", {}).get("clip_model") or ref.get("name")
            return ClipEncoder(clip_model)
        for tower_dir in (d / ref.get("dir", "image_tower"), d.parent / ref.get("dir", "image_tower")):
            if tower_dir.is_dir():
                from modules.encoders.image_space import load_image_encoder

                return load_image_encoder(tower_dir, state["params"])
        raise FileNotFoundError(f"image tower not found next to {d} (expected {d / 'image_tower'}); pass "
                                "image_encoder= to SearchEngine.load")


def gibberish_queries(n: int, seed: int = 42) -> list[str]:
    """``n`` seeded nonsense queries (1-3 random letter strings of 4-9 letters) for calibrating ``low_confidence``."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return [" ".join("".join(rng.choice(letters, size=int(rng.integers(4, 10)))) for _ in range(int(rng.integers(1, 4))))
            for _ in range(n)]


def sample_query_texts(queries: Sequence[Mapping[str, Any]], n: int, seed: int = 42,
                       kind: str | None = None) -> list[str]:
    """A seeded sample of at most ``n`` distinct non-empty query texts (of one ``kind`` when given), sorted."""
    texts = sorted({str(q.get("text") or "").strip() for q in queries
                    if kind is None or q.get("kind", "text") == kind} - {""})
    if not texts or n <= 0:
        return []
    pick = np.random.default_rng(seed).choice(len(texts), size=min(n, len(texts)), replace=False)
    return [texts[i] for i in sorted(pick)]


def calibrate_from_train_queries(engine: SearchEngine, train_queries: Sequence[Mapping[str, Any]],
                                 params: Mapping[str, Any], seed: int = 42) -> float | None:
    """Calibrate ``low_confidence`` on TRAIN-split text queries against seeded gibberish, unless params fix it.

    ``retrieval.low_confidence_threshold`` set in params wins; with no text queries (nothing to calibrate on) the
    threshold stays unset and no result is flagged. Returns the threshold in use."""
    hp = params.get("retrieval", {})
    if hp.get("low_confidence_threshold") is not None:
        return engine.low_conf_threshold
    n = int(hp.get("low_confidence_calibration_queries", 200))
    real = sample_query_texts(train_queries, n, seed)
    if not real:
        log.warning("low_confidence: no TRAIN text queries to calibrate on; results are never flagged")
        return None
    thr = calibrate_low_confidence(engine, real, gibberish_queries(len(real), seed))
    log.info("low_confidence threshold %.4f calibrated on %d train queries vs %d gibberish", thr, len(real), len(real))
    return thr


def calibrate_low_confidence(engine: SearchEngine, real_queries: Sequence[str], gibberish_queries: Sequence[str]
                             ) -> float:
    """Pick the best-dense-cosine threshold that best separates real from gibberish queries (balanced accuracy),
    store it on the engine (saved in calibration.json) and return it. Use TRAIN-split queries only."""
    real = np.array([engine.query_confidence(q) for q in real_queries if q.strip()])
    junk = np.array([engine.query_confidence(q) for q in gibberish_queries if q.strip()])
    if len(real) == 0 or len(junk) == 0:
        raise ValueError("calibration needs at least one real and one gibberish query")
    values = np.unique(np.concatenate([real, junk]))
    candidates = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    best_thr, best_acc = float(candidates[0]), -1.0
    for thr in candidates:
        acc = 0.5 * ((real >= thr).mean() + (junk < thr).mean())
        if acc > best_acc + 1e-12:
            best_thr, best_acc = float(thr), float(acc)
    engine.low_conf_threshold = best_thr
    return best_thr
