"""Stage 3, retrieve: the candidate lists of a query, each searched only over the allowed rows -- lexical (BM25 over
the whole catalog plus the live delta index), dense text, dense image, a photo list (image-tower cosine blended with
model-free colour features), dense fused, and "like this but in <colour>" -- plus the single-retriever baselines.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from modules.search.dense import l2_normalize
from modules.search.encode import QueryVectors, image_space_text, text_fused_query
from modules.search.filters import color_evidence, color_mask, dominant_mask
from modules.search.photo_category import confident_photo_category
from modules.search.query import Intents

if TYPE_CHECKING:
    from modules.search.state import EngineState


def top_from_scores(scores: np.ndarray, allowed: np.ndarray, k: int, positive_only: bool = True) -> np.ndarray:
    """The ``k`` allowed rows with the highest scores (ties: lower row first); only positive scores by default."""
    s = np.where(allowed, scores, -np.inf)
    cand = np.flatnonzero(s > 0) if positive_only else np.flatnonzero(allowed)
    if len(cand) == 0:
        return cand
    vals = s[cand]
    if len(cand) > k > 0 and not np.isnan(vals).any():
        # Sort only the rows at or above the k-th best score (every row tied with it included, so the tie-break
        # by row is unchanged): the same k rows as sorting all of them. At 100K items BM25 is positive on ~15K
        # rows and the photo list scores every row; sorting them all cost 2-10 ms.
        kth = np.partition(vals, len(vals) - k)[len(vals) - k]
        keep = vals >= kth
        cand, vals = cand[keep], vals[keep]
    order = np.lexsort((cand, -vals))
    return cand[order][:k]


def photo_similarity(state: EngineState, img: Image.Image, q_photo: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, str]:
    """Image -> image similarity of a query photo to every row, with the colour-feature cosine and the photo's
    named dominant colour: ``retrieval.photo.tower_weight * cos(tower) + color_weight * cos(colour features)
    + dominant_color_bonus * [same dominant colour]``. The model-free colour features (background removed,
    exposure-normalised for busy scenes) are robust to a shopper's clutter and lighting, where the tower's
    view of shape is not; weights tuned on TRAIN image queries (params.yaml).

    Returns ``(similarity, colour cosine of every row or None, the query's unit colour features or None, dominant
    colour)``: with ``color_weight`` 0 the whole-catalog colour product is skipped (at 100K rows it read ~60 MB per
    photo query) and the re-ranker's ``color_sim`` is computed for the candidates alone (``Retrieved.color_sim_rows``)."""
    from modules.encoders.color import color_features_and_name

    cfg = state.retrieval.photo
    w_tower, w_color, bonus = cfg.tower_weight, cfg.color_weight, cfg.dominant_color_bonus
    img = img.convert("RGB")
    q_color, dominant = color_features_and_name(img, state.params.get("encoders", {}).get("color"))
    sim = w_tower * state.image_index.dot_all(q_photo)
    unit = state.color_unit
    q_unit = None if unit is None else l2_normalize(q_color).ravel()
    color_sim = None
    if q_unit is not None and w_color != 0:
        color_sim = unit @ q_unit
        sim = sim + w_color * color_sim
    return (sim + bonus * dominant_mask(state, dominant)).astype(np.float32), color_sim, q_unit, dominant


@dataclass
class Retrieved:
    lists: dict[str, np.ndarray]   # list name -> rows, best first
    bm25: np.ndarray               # BM25 score of every row (zeros without text)
    color_sim: np.ndarray | None = None   # colour-feature cosine of every row to the query photo, when computed
    q_color: np.ndarray | None = None     # the query photo's unit colour features (None: no photo, or no colour features)
    photo_category: str | None = None     # the category a photo query's head named (photo_category.py), or None

    def color_sim_rows(self, state: EngineState, rows: np.ndarray) -> np.ndarray:
        """The colour-feature cosine of ``rows`` to the query photo (zeros without one)."""
        if self.color_sim is not None:
            return self.color_sim[rows]
        if self.q_color is None:
            return np.zeros(len(rows), np.float32)
        return state.color_unit[rows] @ self.q_color


def retrieve(state: EngineState, text: str | None, retrieval_text: str, img: Image.Image | None, vec: QueryVectors,
             intents: Intents, allowed: np.ndarray) -> Retrieved:
    """Every candidate list of the query, ``retrieval.candidates`` rows each. A photo query without a colour
    intent takes the photo's dominant colour as its (model-free) colour intent: ``intents.color`` is set here."""
    pool = state.retrieval.candidates
    n = state.n_rows
    color_sim = q_color = photo_sim = None
    if vec.photo is not None:
        photo_sim, color_sim, q_color, dominant = photo_similarity(state, img, vec.photo)
        if not intents.color and text is None and state.retrieval.photo.dominant_color_intent:
            intents.color = dominant  # model-free colour intent of a photo query
    # a photo query's category as its photo-category head names it (when sure enough): its own list and a hybrid-score
    # boost, but not a category intent (the re-ranker's category_match): as an intent, the 5K synthetic catalog's text
    # + LambdaMART NDCG@10 went 0.8669 -> 0.8569 and photo + text 0.5959 -> 0.5565; as list + boost 0.8659 and 0.6419
    photo_category = (confident_photo_category(state, vec.photo)
                      if vec.photo is not None and text is None and not intents.category else None)
    lists: dict[str, np.ndarray] = {}
    bm25 = state.bm25.scores(retrieval_text, n) if text else np.zeros(n, np.float32)
    if text and img is None:
        lists["bm25"] = top_from_scores(bm25, allowed, pool)
        lists["text"] = state.text_index.search(vec.text, pool, allowed)[1]
    if vec.image is not None:
        lists["image"] = state.image_index.search(vec.image, pool, allowed)[1]
    if photo_sim is not None and text is None:
        lists["photo"] = top_from_scores(photo_sim, allowed, pool, positive_only=False)
        if photo_category:   # the photo's nearest items within its category (a street photo's neighbours are not)
            in_category = allowed & (state.cat == photo_category)
            lists["photo_in_category"] = top_from_scores(photo_sim, in_category, pool, positive_only=False)
    lists["fusion"] = state.fused_index.search(vec.fused, pool, allowed)[1]
    if text and img is None and intents.color:
        lists["color"] = color_list(state, intents, allowed, pool)
    if vec.photo is not None and text and intents.color:
        # "like this but in navy": the items nearest to the photo among those of the requested colour.
        in_color = allowed & color_mask(state, intents.color)
        lists["image_in_color"] = state.image_index.search(vec.photo, pool, in_color)[1]
    return Retrieved(lists=lists, bm25=bm25, color_sim=color_sim, q_color=q_color, photo_category=photo_category)


def color_list(state: EngineState, intents: Intents, allowed: np.ndarray, k: int) -> np.ndarray:
    """The rows most strongly of the query's colour (``filters.color_evidence``: photo share, title naming it), within
    the query's category when it names one: titles of a real catalog often leave the colour out, and the lexical and
    dense lists then hold the category's items in an order that says nothing about colour."""
    evidence = color_evidence(state, intents.color)
    if intents.category:
        evidence = np.where(state.cat == intents.category, evidence, 0.0)
    return top_from_scores(evidence, allowed, k)


def text_confidence(state: EngineState, q_text: np.ndarray) -> float:
    """Best dense (text) cosine of a query vector over the alive rows: the signal behind ``low_confidence``."""
    return float(state.text_index.search(q_text, 1, state.alive)[0].max(initial=-1.0))


def single_retriever(state: EngineState, text: str, retriever: str, top_k: int, allowed: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, float | None]:
    """``(scores, rows, confidence)`` of one retriever alone (bm25 | tfidf | text | image | fusion): the
    benchmark baselines. ``confidence`` is ``None`` for the lexical retrievers."""
    if retriever in ("bm25", "tfidf"):
        scores = state.bm25.scores(text, state.n_rows) if retriever == "bm25" else state.tfidf.scores(text)
        rows = top_from_scores(scores, allowed, top_k)
        return scores[rows], rows, None
    q_text = np.asarray(state.text_encoder.encode_query(text), np.float32)
    if retriever == "text":
        vals, rows = state.text_index.search(q_text, top_k, allowed)
    elif retriever == "image":
        q_img = image_space_text(state, text, q_text)
        if q_img is None:
            raise ValueError("retriever 'image' needs a text-aligned image encoder (image tower or CLIP)")
        vals, rows = state.image_index.search(q_img, top_k, allowed)
    else:
        vals, rows = state.fused_index.search(text_fused_query(state, text, q_text), top_k, allowed)
    return vals, rows, text_confidence(state, q_text)


def similar_rows(state: EngineState, row: int, top_k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows nearest to ``row`` in the fused space (``row`` itself excluded)."""
    allowed[row] = False
    return state.fused_index.search(state.fused_index.vectors[row], top_k, allowed)
