"""The one build path of a search engine from a catalog, used by the pipeline AND by ``pixelmatch benchmark``.

1. ``embed_catalog`` (what EmbeddingGen computes): SBERT text embeddings of the item text; one decode per photo for
   its colour features, dominant colour name, "same photo" fingerprint (and, for the ``backbone`` image space, its
   frozen features); the
   configured image space (frozen backbone + LiT text head by default); attributes learned from the catalog's own
   labels. ``save_embeddings`` / ``load_embeddings`` write and read it as the EmbeddingGen artifact.
2. ``build_engine`` (what IndexBuilder computes): the learned attribute values made searchable, the fusion (trained
   on TRAIN-split queries only), the indexes, training-window popularity, Transform's ``price_log_z`` per row (the
   re-ranker's ``price`` feature, ``modules.search.transformed``: IndexBuilder reads the pipeline's Transform
   outputs, the benchmark analyses the same ``preprocessing_fn`` in-process), the text queries' RRF list weights
   tuned on the held-out TRAIN text queries (``modules.search.rrf_tuning``), and the ``low_confidence`` threshold
   calibrated on TRAIN-split text queries.
"""
from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modules.data.data_io import (
    EMB_ATTRIBUTES_FILE,
    EMB_COLOR_FILE,
    EMB_COLOR_NAMES_FILE,
    EMB_FINGERPRINTS_FILE,
    EMB_IDS_FILE,
    EMB_IMAGE_FILE,
    EMB_TEXT_FILE,
    EMB_TOWER_DIR,
    item_popularity,
    item_text,
    load_embedding_rows,
    load_items,
    load_photo_colours,
    load_photo_fingerprints,
)
from modules.search.calibration import calibrate_from_train_queries
from modules.search.engine import SearchEngine
from modules.search.fusion import Fusion, build_train_pairs, fusion_pair_queries
from modules.search.rrf_tuning import tune_rrf_weights
from modules.settings import load_section

log = logging.getLogger(__name__)


@dataclass
class CatalogEmbeddings:
    """Everything ``embed_catalog`` computes, row ``i`` of every array describing row ``i`` of ``items``."""

    items: pd.DataFrame
    text_encoder: Any
    text_emb: np.ndarray
    image_encoder: Any
    image_emb: np.ndarray
    color: np.ndarray                 # model-free colour features (zero rows: no usable photo)
    color_names: list[str]            # named dominant colour of each photo ("" if none)
    attributes: dict[str, Any]        # {"metrics": {column: ...}, "filled": {item_id: {column: {value, confidence}}}}
    image_kind: str
    has_image: np.ndarray | None = None
    backbone_feats: np.ndarray | None = None
    fingerprints: np.ndarray | None = None  # "same photo" fingerprints (zeros: no photo; None: an older artifact)
    n_photos: int = 0                 # items with a photo path (readable or not)
    seconds: dict[str, float] = field(default_factory=dict)


def _image_paths(items: pd.DataFrame, data_dir: Path) -> list[Path | None]:
    """Each item's photo path (None where the catalog has none)."""
    return [data_dir / rel if rel else None for rel in items["image_path"].fillna("").astype(str)]


def _photo_pass(items: pd.DataFrame, paths: list[Path | None], params: Mapping[str, Any], seed: int, kind: str,
                progress: bool) -> Any:
    """One decode per photo: colour features and names, and (kind ``backbone``) the frozen backbone features, over
    ``encoders.backbone.workers`` (``encoders.color.workers`` without a backbone) processes. The pass also finds
    the unreadable photos (their items become text-only)."""
    from modules.encoders.photo_pass import photo_pass

    enc = params["encoders"]
    model = str(enc["backbone"]["model"]) if kind == "backbone" else None
    workers = int(enc["backbone"]["workers"] if model else enc["color"]["workers"])
    done = photo_pass(paths, params, seed, backbone=model, workers=workers, progress=progress)
    for i in np.flatnonzero(np.array([p is not None for p in paths]) & ~done.readable):
        log.warning("item %s: image %s unusable; the item is text-only", items["item_id"].iloc[i], paths[i])
    return done


def embed_catalog(data_dir: str | Path, params: Mapping[str, Any], seed: int, progress: bool = True,
                  image_stage: Callable[[], contextlib.AbstractContextManager] | None = None) -> CatalogEmbeddings:
    """Embed a catalog (see the module docstring). ``image_stage``: a context around the photo pass and the image
    space (the pipeline measures that step's emissions there)."""
    from modules.attributes import attribute_features, fill_attributes
    from modules.encoders.image_space import embed_catalog_images, image_kind
    from modules.encoders.text import text_encoder_from_params

    root = Path(data_dir)
    items = load_items(root)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    text_encoder = text_encoder_from_params(dict(params))
    text_emb = text_encoder.encode(item_text(items), batch_size=int(params["encoders"]["text"]["batch_size"]),
                                   progress=progress)
    seconds["text"] = time.perf_counter() - t0

    paths = _image_paths(items, root)
    kind = image_kind(params)
    with (image_stage or contextlib.nullcontext)():
        photos = _photo_pass(items, paths, params, seed, kind, progress)
        seconds.update(photos.seconds)
        images = embed_catalog_images(paths, photos.readable, text_emb, photos.color, params, seed,
                                      progress=progress, backbone_feats=photos.backbone)
    seconds.update(images.seconds)
    t0 = time.perf_counter()
    attr_cfg = params["attributes"]
    feats = attribute_features(images.vectors, photos.color, float(attr_cfg["color_weight"]))
    attributes = fill_attributes(items, feats, images.has_image, attr_cfg, seed)
    seconds["attributes"] = time.perf_counter() - t0
    return CatalogEmbeddings(
        items=items, text_encoder=text_encoder, text_emb=text_emb, image_encoder=images.encoder,
        image_emb=images.vectors, color=photos.color, color_names=list(photos.names), attributes=attributes,
        image_kind=kind, has_image=images.has_image, backbone_feats=images.backbone_feats,
        fingerprints=photos.fingerprints, n_photos=sum(p is not None for p in paths), seconds=seconds)


def save_embeddings(emb: CatalogEmbeddings, out_dir: str | Path) -> Path:
    """Write the EmbeddingGen artifact: text.npy, image.npy, color.npy (+ backbone features, + photo fingerprints),
    item_ids.json, color names, attributes.json and image_tower/."""
    from modules.encoders.image_space import BACKBONE_FEATS_FILE, save_image_encoder

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / EMB_TEXT_FILE, emb.text_emb.astype(np.float32))
    np.save(out / EMB_IMAGE_FILE, emb.image_emb.astype(np.float32))
    np.save(out / EMB_COLOR_FILE, emb.color.astype(np.float32))
    if emb.backbone_feats is not None:
        np.save(out / BACKBONE_FEATS_FILE, emb.backbone_feats.astype(np.float32))
    if emb.fingerprints is not None:
        np.save(out / EMB_FINGERPRINTS_FILE, emb.fingerprints.astype(np.uint8))
    (out / EMB_IDS_FILE).write_text(json.dumps(emb.items["item_id"].astype(str).tolist()))
    (out / EMB_COLOR_NAMES_FILE).write_text(json.dumps(emb.color_names))
    (out / EMB_ATTRIBUTES_FILE).write_text(json.dumps(emb.attributes))
    save_image_encoder(emb.image_encoder, out / EMB_TOWER_DIR, emb.image_kind)
    return out


def _photo_colours(emb_dir: Path, item_ids: list[str]) -> list[str]:
    names = load_photo_colours(emb_dir, item_ids)
    if names is None:
        raise FileNotFoundError(f"{emb_dir} has no {EMB_COLOR_NAMES_FILE}")
    return names


def load_embeddings(data_dir: str | Path, emb_dir: str | Path, params: Mapping[str, Any]) -> CatalogEmbeddings:
    """The EmbeddingGen artifact at ``emb_dir``, re-ordered to the catalog at ``data_dir``, with its encoders."""
    from modules.encoders.image_space import image_kind, load_image_encoder
    from modules.encoders.text import text_encoder_from_params

    emb_dir = Path(emb_dir)
    items = load_items(data_dir)
    item_ids = items["item_id"].astype(str).tolist()
    text_emb, image_emb, color = load_embedding_rows(emb_dir, item_ids)
    attr_path = emb_dir / EMB_ATTRIBUTES_FILE
    return CatalogEmbeddings(
        items=items, text_encoder=text_encoder_from_params(dict(params)), text_emb=text_emb,
        image_encoder=load_image_encoder(emb_dir / EMB_TOWER_DIR, params), image_emb=image_emb, color=color,
        color_names=_photo_colours(emb_dir, item_ids),
        fingerprints=load_photo_fingerprints(emb_dir, item_ids),
        attributes=json.loads(attr_path.read_text()) if attr_path.is_file() else {},
        image_kind=image_kind(params))


def build_photo_category(engine: SearchEngine, emb: CatalogEmbeddings, items: pd.DataFrame, data_dir: str | Path,
                         seed: int) -> tuple[Any, dict[str, Any]]:
    """The engine's photo-category head (``modules.search.photo_category``) and its report; ``(None, reason)``
    without an image encoder or with ``retrieval.photo.category_confidence`` null. Query photos and the augmented
    training photos are embedded by the same :func:`modules.search.encode.encode_photo`."""
    from modules.search.encode import encode_photo
    from modules.search.photo_category import train_photo_category

    s = engine.state
    if s.image_encoder is None or s.retrieval.photo.category_confidence is None:
        return None, {"skipped": "no image encoder" if s.image_encoder is None else "category_confidence is null"}
    has_image = emb.has_image if emb.has_image is not None else np.asarray(emb.color).any(axis=1)
    return train_photo_category(lambda img: encode_photo(s, img), np.asarray(s.image_index.vectors), s.cat,
                                _image_paths(items, Path(data_dir)), has_image, s.retrieval.photo.category_head, seed)


@dataclass
class BuiltEngine:
    engine: SearchEngine
    info: dict[str, Any]              # n_items, fusion, n_filled_items, n_fusion_pairs, low_confidence_threshold
    seconds: dict[str, float] = field(default_factory=dict)


def build_fusion(emb: CatalogEmbeddings, items: pd.DataFrame, params: Mapping[str, Any],
                 train_queries: Sequence[Mapping[str, Any]], seed: int, method: str | None = None
                 ) -> tuple[Fusion, int]:
    """The fusion (``fusion.method`` unless ``method`` is given) and how many (query, item) pairs it trained on."""
    fusion_params = params.get("fusion", {})
    cfg = load_section("fusion", fusion_params)
    method = str(method or cfg.method)
    pairs = (build_train_pairs(items, emb.text_encoder, fusion_pair_queries(train_queries, cfg.learned, seed), seed=seed)
             if method == "learned" else None)   # not the re-ranker's queries (``ranker_queries``)
    fusion = Fusion.build(method, emb.text_emb, emb.image_emb, fusion_params, seed=seed, train_pairs=pairs)
    return fusion, 0 if pairs is None else len(pairs[1])


def build_engine(emb: CatalogEmbeddings, data_dir: str | Path, params: Mapping[str, Any],
                 train_queries: Sequence[Mapping[str, Any]], seed: int, fusion_method: str | None = None,
                 calibrate: bool = True, transform_dir: str | Path | None = None,
                 examples_dir: str | Path | None = None, photo_category_from: SearchEngine | None = None,
                 query_encoder: Any = None) -> BuiltEngine:
    """Index embedded catalog (see the module docstring); no ranker attached. ``fusion_method`` overrides
    ``fusion.method``; ``calibrate=False`` leaves the ``low_confidence`` threshold to params. ``transform_dir`` +
    ``examples_dir``: Transform's ``transform_graph`` and ``transformed_examples`` (IndexBuilder); without them the
    catalog is analysed in-process (reused within a process for the same items). ``photo_category_from``: an engine
    of the same catalog whose photo-category head is reused instead of trained again. ``query_encoder``: the text
    encoder the engine encodes queries (and live-added items) with, e.g. the served ONNX runtime (IndexBuilder), so
    the RRF tuning and the calibration see the query vectors shoppers will get; None: the catalog's encoder."""
    from modules.attributes import apply_fills
    from modules.search.transformed import catalog_price_log_z

    seconds: dict[str, float] = {}
    items, filled = apply_fills(emb.items, emb.attributes.get("filled", {}))  # learned values become searchable
    t0 = time.perf_counter()
    fusion, n_pairs = build_fusion(emb, items, params, train_queries, seed, fusion_method)
    seconds["fusion"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    # of the raw catalog rows, as the pipeline's Transform read them (before the learned fills), in catalog row order
    price_log_z, graph, transform_source = catalog_price_log_z(emb.items, params, transform_dir, examples_dir)
    seconds["transform"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    popularity = item_popularity(data_dir, items["item_id"].astype(str).tolist())
    engine = SearchEngine.build(items, emb.text_emb, emb.image_emb, emb.color, query_encoder or emb.text_encoder,
                                emb.image_encoder,
                                dict(params), fusion=fusion, popularity=popularity, item_colors=emb.color_names,
                                filled=filled, price_log_z=price_log_z, item_graph=graph,
                                photo_fingerprints=emb.fingerprints)
    seconds["indexes"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if photo_category_from is not None:
        engine.state.photo_category, photo_category = photo_category_from.state.photo_category, {"reused": True}
    else:
        engine.state.photo_category, photo_category = build_photo_category(engine, emb, items, data_dir, seed)
    seconds["photo_category"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    rrf_tuning = tune_rrf_weights(engine.state, train_queries, params, seed)
    seconds["rrf_tuning"] = time.perf_counter() - t0
    threshold = engine.low_conf_threshold
    if calibrate:
        t0 = time.perf_counter()
        threshold = calibrate_from_train_queries(engine, train_queries, params, seed=seed)
        seconds["calibration"] = time.perf_counter() - t0
    info = {"n_items": len(items), "fusion": fusion.method, "n_filled_items": len(filled),
            "n_fusion_pairs": n_pairs, "low_confidence_threshold": threshold, "item_features": transform_source,
            "photo_category": photo_category, "rrf_tuning": rrf_tuning}
    return BuiltEngine(engine, info, seconds)
