"""SearchEngine: the one search engine used by evaluation AND serving -- a thin facade over the stages.

A hybrid query passes through
1. hygiene and query understanding (``encode.clean_query``, ``query.QueryParser``): empty/whitespace ->
   ``ValueError("query is empty")``, longer than ``retrieval.max_query_chars`` -> truncated; colour, pattern,
   category, gender, brand and price intents;
2. encode (``encode``): the query's vectors in the text, image and fused spaces;
3. retrieve (``retrieve``, over ``filters.allowed_rows``): BM25, dense text, dense image, photo, dense fused,
   ``retrieval.candidates`` per list;
4. RRF (``rrf``): weighted reciprocal rank fusion with the query kind's list weights;
5. features (``features``): ``RANK_FEATURES`` per candidate and the hybrid score (RRF + intent boosts);
6. re-rank (``rerank``): the optional ``ranker.rerank(query_ctx, candidates_df)`` hook, gated per query kind;
   then, for a photo query, same photo (``same_photo``): candidates whose catalog photo is the query photo go first;
7. respond (``respond``): the ``SearchResponse``.

The engine's state is one ``state.EngineState`` (``engine.state``); its fields read and write through the facade
(``engine.items``, ``engine.low_conf_threshold = ...``). ``persistence`` saves/loads it, ``live`` adds/deletes
items, ``calibration`` calibrates ``low_confidence``.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from modules.search import live, persistence
from modules.search.encode import QueryVectors, check_top_k, clean_query, encode_query
from modules.search.features import RANK_FEATURES, candidate_columns, empty_candidates
from modules.search.filters import allowed_rows
from modules.search.fusion import Fusion
from modules.search.query import Intents, QueryParser
from modules.search.rerank import rerank_candidates
from modules.search.respond import SearchResponse, hybrid_response, single_response
from modules.search.retrieve import Retrieved, retrieve, similar_rows, single_retriever, text_confidence
from modules.search.rrf import fuse_lists
from modules.search.same_photo import promote_same_photo
from modules.search.state import EngineState, UnknownItemError, build_state
from modules.search.transformed import ItemGraph

RETRIEVERS = ("hybrid", "bm25", "tfidf", "text", "image", "fusion")
_STATE_FIELDS = frozenset(f.name for f in dataclasses.fields(EngineState))


def rerank_depth(s: EngineState, top_k: int) -> int | None:
    """How many of the best hybrid candidates get features and go to the re-ranker: ``retrieval.rerank_depth``,
    at least ``top_k`` (None: every candidate)."""
    depth = s.retrieval.rerank_depth
    return None if depth is None else max(int(depth), int(top_k))


def retrieve_stage(s: EngineState, text: str | None, img: Image.Image | None, image_weight: float,
                   filters: Mapping[str, Any] | None, hard_intents: bool
                   ) -> tuple[Intents, str, QueryVectors, Retrieved]:
    """Stages 1-3 of a hybrid query: its intents, the text left for retrieval, its vectors and its candidate
    lists (``retrieve.Retrieved``)."""
    intents = s.parser.parse(text) if text else Intents()
    retrieval_text = (intents.residual_text or text) if text else ""
    allowed = allowed_rows(s, filters, intents if hard_intents else None, fresh=bool(intents.fresh))
    vec = encode_query(s, text, retrieval_text, img, image_weight)
    return intents, retrieval_text, vec, retrieve(s, text, retrieval_text, img, vec, intents, allowed)


def candidates(s: EngineState, text: str | None, img: Image.Image | None, image_weight: float,
               filters: Mapping[str, Any] | None, hard_intents: bool, context: Mapping[str, Any] | None,
               depth: int | None) -> tuple[dict[str, np.ndarray], Intents, dict[str, Any]]:
    """Stages 1-5 of a hybrid query: its best ``depth`` candidates best first (columns ``item_id``, ``row``,
    ``RANK_FEATURES``, ``score``; :func:`rerank_depth`), its intents and the query context handed to the
    re-ranker."""
    intents, retrieval_text, vec, retrieved = retrieve_stage(s, text, img, image_weight, filters, hard_intents)
    fused = fuse_lists(retrieved.lists, s.retrieval, has_text=text is not None, has_image=img is not None)
    if not len(fused[0]):
        return empty_candidates(), intents, {}
    feats = candidate_columns(s, text, retrieval_text, img is not None, vec, intents, retrieved, fused, context,
                              depth)
    qctx = {"query": text or "", "intents": intents.to_dict(), "filters": dict(filters or {}),
            "has_image": img is not None, "context": dict(context or {})}
    return feats, intents, qctx


class SearchEngine:
    """Hybrid lexical + dense product search over one catalog (see the module docstring)."""

    state: EngineState

    def __init__(self, state: EngineState) -> None:  # use SearchEngine.build or SearchEngine.load
        object.__setattr__(self, "state", state)

    # The state's fields are the engine's attributes (read and written through).
    def __getattr__(self, name: str) -> Any:
        state = self.__dict__.get("state")
        if state is not None and (name in _STATE_FIELDS or name in ("hp", "n_rows")):
            return getattr(state, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _STATE_FIELDS:
            setattr(self.state, name, value)
        else:
            object.__setattr__(self, name, value)

    # ------------------------------------------------------------------------------------------------ construction
    @classmethod
    def build(cls, items: pd.DataFrame, text_emb: np.ndarray, image_emb: np.ndarray, color_feats: np.ndarray | None,
              text_encoder: Any, image_encoder: Any, params: Mapping[str, Any], fusion: Fusion | None = None,
              ranker: Any = None, popularity: np.ndarray | None = None, item_colors: Sequence[str] | None = None,
              parser: QueryParser | None = None, filled: Mapping[str, Mapping[str, Any]] | None = None,
              price_log_z: np.ndarray | None = None, item_graph: ItemGraph | None = None,
              photo_fingerprints: np.ndarray | None = None) -> SearchEngine:
        """Index a catalog. Row ``i`` of every array describes row ``i`` of ``items``.

        ``params``: the full params dict (``retrieval``/``fusion`` sections are read). ``fusion`` defaults to
        ``concat`` (needs no training). ``item_colors``: named dominant colour of each item's image ("" if none).
        ``filled``: ``{item_id: {column: {"value", "confidence"}}}`` of attributes learned from the catalog's labels
        (shown in ``explain["filled"]``). ``price_log_z``: Transform's value of each row, with ``item_graph``, the
        transform graph it came from (``transformed.catalog_price_log_z``); without them the ranker's ``price``
        feature is the raw price. ``photo_fingerprints``: each row's "same photo" fingerprint
        (``modules.encoders.fingerprint``; None: photo queries skip the same-photo promotion).
        """
        return cls(build_state(items, text_emb, image_emb, color_feats, text_encoder, image_encoder, params,
                               fusion=fusion, ranker=ranker, popularity=popularity, item_colors=item_colors,
                               parser=parser, filled=filled, price_log_z=price_log_z, item_graph=item_graph,
                               photo_fingerprints=photo_fingerprints))

    @classmethod
    def load(cls, directory: str | Path, params: Mapping[str, Any] | None = None, text_encoder: Any = None,
             image_encoder: Any = None, ranker: Any = None) -> SearchEngine:
        """Load a saved engine (see ``persistence.load_state``)."""
        return cls(persistence.load_state(directory, params, text_encoder=text_encoder,
                                          image_encoder=image_encoder, ranker=ranker))

    def save(self, directory: str | Path) -> Path:
        """Write the engine to ``directory`` (the bundle's ``search/``; see ``persistence``)."""
        return persistence.save_state(self.state, directory)

    # ------------------------------------------------------------------------------------------------ search
    def _candidates(self, text: str | None, img: Image.Image | None, image_weight: float,
                    filters: Mapping[str, Any] | None, hard_intents: bool, context: Mapping[str, Any] | None
                    ) -> tuple[dict[str, np.ndarray], Intents, dict[str, Any]]:
        return candidates(self.state, text, img, image_weight, filters, hard_intents, context,
                          rerank_depth(self.state, 0))

    def _hybrid(self, text: str | None, img: Image.Image | None, image_weight: float, top_k: int, retriever: str,
                t0: float, filters: Mapping[str, Any] | None, context: Mapping[str, Any] | None, rerank: bool,
                hard_intents: bool = False) -> SearchResponse:
        feats, intents, qctx = candidates(self.state, text, img, image_weight, filters, hard_intents, context,
                                          rerank_depth(self.state, top_k))
        feats, reranker_scores = rerank_candidates(self.state.ranker, feats, qctx, retriever, rerank)
        # photo queries only: a composed query asks for a change to the photo's product (``same_photo``)
        feats, same_photo = promote_same_photo(self.state, feats, img if text is None else None)
        return hybrid_response(self.state, feats, reranker_scores, intents.to_dict(), qctx, top_k, retriever, t0,
                               lexical_ran=retriever == "hybrid", same_photo=same_photo)

    def search_text(self, query: str, top_k: int = 10, retriever: str = "hybrid",
                    filters: Mapping[str, Any] | None = None, hard_intents: bool = False,
                    context: Mapping[str, Any] | None = None, rerank: bool = True) -> SearchResponse:
        """Text search. ``retriever``: hybrid | bm25 | tfidf | text | image | fusion (single retrievers are the
        benchmark baselines: no intent boosts, no re-ranker). ``hard_intents`` turns parsed intents into filters.
        ``context`` may carry ``two_tower``: {item_id: score} for a signed-in user. ``rerank=False`` skips the
        re-ranker hook (hybrid only; it runs when the engine has a ranker). Queries longer than
        ``retrieval.max_query_chars`` are truncated."""
        t0 = time.perf_counter()
        s = self.state
        q = clean_query(query, s.retrieval.max_query_chars)
        top_k = check_top_k(top_k)
        if retriever not in RETRIEVERS:
            raise ValueError(f"unknown retriever {retriever!r}; choose from {list(RETRIEVERS)}")
        if retriever == "hybrid":
            return self._hybrid(q, None, 0.0, top_k, retriever, t0, filters, context, rerank, hard_intents)
        intents = s.parser.parse(q)
        allowed = allowed_rows(s, filters, intents if hard_intents else None)
        vals, rows, confidence = single_retriever(s, intents.residual_text or q, retriever, top_k, allowed)
        explain_key = "lexical" if retriever in ("bm25", "tfidf") else "dense"
        return single_response(s, vals, rows, explain_key, confidence, intents.to_dict(), t0, retriever)

    def search_image(self, img: Image.Image, top_k: int = 10, filters: Mapping[str, Any] | None = None,
                     context: Mapping[str, Any] | None = None, rerank: bool = True) -> SearchResponse:
        """Query by photo: image and fused dense lists fused with RRF, boosted by the photo's dominant colour; a
        candidate whose catalog photo is the query photo comes first (``same_photo``, ``explain["same_photo"]``)."""
        t0 = time.perf_counter()
        top_k = check_top_k(top_k)
        return self._hybrid(None, img, 1.0, top_k, "image_query", t0, filters, context, rerank)

    def search_multimodal(self, text: str, img: Image.Image, image_weight: float | None = None, top_k: int = 10,
                          filters: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None,
                          rerank: bool = True) -> SearchResponse:
        """Composed query ("like this but in navy"): ``image_weight * photo + (1 - image_weight) * text`` in the
        image space (default ``retrieval.composed_image_weight``), plus the text's intents (its colour) as boosts.
        An empty text makes it a plain photo query. No same-photo promotion, whatever ``image_weight``: the text asks
        for something other than the photo's own product."""
        t0 = time.perf_counter()
        if isinstance(text, str) and not text.strip():
            return self.search_image(img, top_k=top_k, filters=filters, context=context, rerank=rerank)
        q = clean_query(text, self.state.retrieval.max_query_chars)
        top_k = check_top_k(top_k)
        w = float(self.state.retrieval.composed_image_weight if image_weight is None else image_weight)
        if not math.isfinite(w) or not 0.0 <= w <= 1.0:
            raise ValueError(f"image_weight must be in [0, 1], got {image_weight!r}")
        return self._hybrid(q, img, w, top_k, "multimodal", t0, filters, context, rerank)

    def similar(self, item_id: str, top_k: int = 10, filters: Mapping[str, Any] | None = None) -> SearchResponse:
        """Items most similar to ``item_id`` by fused embedding (the item itself excluded)."""
        t0 = time.perf_counter()
        top_k = check_top_k(top_k)
        row = self.state.id_to_row.get(str(item_id))
        if row is None:
            raise UnknownItemError(f"unknown item_id {item_id!r}")
        vals, rows = similar_rows(self.state, row, top_k, allowed_rows(self.state, filters))
        return single_response(self.state, vals, rows, "dense", None, {}, t0, "similar")

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
            text = clean_query(text, self.state.retrieval.max_query_chars)
        if text is None and img is None:
            raise ValueError("query is empty")
        w = self.state.retrieval.composed_image_weight if (text and img is not None) else 1.0
        feats, _, _ = candidates(self.state, text, img, w, filters, False, context, rerank_depth(self.state, 0))
        out = pd.DataFrame({c: feats[c] for c in ("item_id", *RANK_FEATURES, "score")})
        return out.head(top_k).reset_index(drop=True) if top_k else out

    def query_confidence(self, query: str) -> float:
        """Best dense (text) cosine of the query: the signal behind ``low_confidence``."""
        s = self.state
        q = clean_query(query, s.retrieval.max_query_chars)
        return text_confidence(s, np.asarray(s.text_encoder.encode_query(s.parser.parse(q).residual_text or q),
                                             np.float32))

    # ------------------------------------------------------------------------------------------------ live updates
    def add_items(self, records: Sequence[Mapping[str, Any]], images: Sequence[Image.Image | None] | None = None
                  ) -> list[str]:
        """Embed and index new items (searchable on the next call). An existing ``item_id`` is replaced."""
        return live.add_items(self.state, records, images)

    def prepare_add(self) -> None:
        """Load what ``add_items`` needs beyond the state (the transform graph, TensorFlow with it) without touching
        the state: a server calls it outside its write lock, so the first live add blocks no search."""
        if self.state.item_graph is not None:
            self.state.item_graph.load()

    def delete_item(self, item_id: str) -> None:
        """Tombstone an item: it disappears from every result from the next call on."""
        live.delete_item(self.state, item_id)

    def __contains__(self, item_id: object) -> bool:
        return str(item_id) in self.state.id_to_row

    def __len__(self) -> int:
        return len(self.state.id_to_row)
