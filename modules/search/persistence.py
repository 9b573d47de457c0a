"""Save and load an ``EngineState`` (the bundle's ``search/`` directory; the layout is the bundle format)::

    items.parquet  text_index/  image_index/  fused_index/  color_feats.npy (optional)  popularity.npy
    bm25/  tfidf.pkl  fusion/  calibration.json  query_parser.json  filled_attributes.json  engine.json
    price_log_z.npy + transform_graph/ (``transformed``: the ranker's price feature and the graph it came from)
    photo_fingerprints.npy (optional: each row's "same photo" fingerprint, ``modules.search.same_photo``)
    photo_category.npz (optional: the photo-category head, ``modules.search.photo_category``)
    rrf_tuning.json (optional: the text RRF weights tuned at build, ``modules.search.rrf_tuning``; applied at load
    over the given ``retrieval`` section unless it turns tuning off)

The image tower itself is saved by the pipeline next to it under ``image_tower/``; only its reference is recorded.
An engine saved before ``price_log_z.npy`` loads without it (its ranker's ``price`` feature stays the raw price);
one saved before ``photo_fingerprints.npy`` loads without the same-photo promotion, one without
``photo_category.npz`` without the photo-category list and boost.
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modules.search.dense import DenseIndex
from modules.search.fusion import Fusion
from modules.search.lexical import BM25Index, TfidfIndex
from modules.search.photo_category import HEAD_FILE, PhotoCategoryHead
from modules.search.query import QueryParser
from modules.search.state import EngineState, retrieval_params, section
from modules.search.transformed import PRICE_FILE, TRANSFORM_DIR, ItemGraph
from modules.settings import load_section

CLIP_DIR = "clip_model"   # a CLIP engine's own copy of the CLIP weights (the bundle needs no other path)
FINGERPRINTS_FILE = "photo_fingerprints.npy"
RRF_TUNING_FILE = "rrf_tuning.json"


def encoder_kind(encoder: Any) -> str:
    """How a saved engine finds its image encoder again: backbone (LiT), clip, color or tower."""
    if hasattr(encoder, "text_to_image_space"):
        return "backbone"
    if hasattr(encoder, "encode_texts"):
        return "clip"
    return "color" if getattr(encoder, "name", "") == "color" else "tower"


def tuned_retrieval(retrieval: Mapping[str, Any], report: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``retrieval`` section an engine loads with: the text weights tuned at build (``rrf_tuning.json``, see
    ``modules.search.rrf_tuning``) over the given ones, unless the report holds none (tuning skipped) or the section
    turns tuning off. ``retrieval``: a complete section (``state.retrieval_params``)."""
    if not report or "weights" not in report or not retrieval["rrf_tuning"]["enabled"]:
        return dict(retrieval)
    return {**retrieval, "rrf_weights": dict(report["weights"])}


def save_state(s: EngineState, directory: str | Path) -> Path:
    """Write the engine to ``directory``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    s.items.to_parquet(d / "items.parquet", index=False)
    s.text_index.save(d / "text_index")
    s.image_index.save(d / "image_index")
    s.fused_index.save(d / "fused_index")
    if s.color_feats is not None:
        np.save(d / "color_feats.npy", s.color_feats)
    np.save(d / "popularity.npy", s.popularity)
    s.bm25.save(d / "bm25")
    s.tfidf.save(d / "tfidf.pkl")
    s.fusion.save(d / "fusion")
    (d / "calibration.json").write_text(json.dumps({"low_confidence_threshold": s.low_conf_threshold}))
    (d / "query_parser.json").write_text(json.dumps(s.parser.to_json()))
    (d / "filled_attributes.json").write_text(json.dumps(s.filled or {}))
    enc = s.image_encoder
    kind = None if enc is None else encoder_kind(enc)
    if kind == "clip":
        _copy_dir(Path(enc.model_dir), d / CLIP_DIR)
    if s.item_graph is not None:  # the engine's own copy of the graph: live adds apply it wherever the engine goes
        np.save(d / PRICE_FILE, s.price_log_z)
        _copy_dir(Path(s.item_graph.directory), d / TRANSFORM_DIR)
    else:
        (d / PRICE_FILE).unlink(missing_ok=True)  # an older engine saved over a newer one: no stale feature left
    if s.photo_fingerprints is not None:
        np.save(d / FINGERPRINTS_FILE, s.photo_fingerprints)
    else:
        (d / FINGERPRINTS_FILE).unlink(missing_ok=True)
    if s.photo_category is not None:
        s.photo_category.save(d)
    else:
        (d / HEAD_FILE).unlink(missing_ok=True)
    if s.rrf_tuning is not None:
        (d / RRF_TUNING_FILE).write_text(json.dumps(s.rrf_tuning))
    else:
        (d / RRF_TUNING_FILE).unlink(missing_ok=True)
    state = {
        "format": 1,
        "params": s.params,
        "alive": s.alive.astype(int).tolist(),
        "live_added": s.live_added.astype(int).tolist(),
        "item_colors": s.item_colors,
        "text_encoder": getattr(s.text_encoder, "name", None),
        "image_encoder": None if enc is None else {
            "class": type(enc).__name__, "name": getattr(enc, "name", None),
            "kind": kind, "dir": CLIP_DIR if kind == "clip" else "image_tower"},
    }
    (d / "engine.json").write_text(json.dumps(state))
    return d


def load_state(directory: str | Path, params: Mapping[str, Any] | None = None, text_encoder: Any = None,
               image_encoder: Any = None, ranker: Any = None) -> EngineState:
    """Load a saved engine (no TFX needed). Encoders not passed are rebuilt from params / the bundle:
    the text encoder from ``encoders.text``, the image tower from ``<directory>/image_tower`` (or the sibling
    ``../image_tower``), CLIP from ``<directory>/clip_model`` (engines saved before it: ``encoders.image.clip_model``)."""
    d = Path(directory)
    if not (d / "engine.json").is_file():
        raise FileNotFoundError(f"{d} is not a saved SearchEngine (no engine.json)")
    saved = json.loads((d / "engine.json").read_text())
    engine_params = dict(saved["params"])
    if params is not None:
        for name in ("retrieval", "fusion", "encoders"):
            if section(params, name):
                engine_params[name] = section(params, name)
    tuning_path = d / RRF_TUNING_FILE
    rrf_tuning = json.loads(tuning_path.read_text()) if tuning_path.is_file() else None
    engine_params["retrieval"] = tuned_retrieval(retrieval_params(engine_params.get("retrieval")), rrf_tuning)
    hnsw = load_section("retrieval.hnsw", engine_params["retrieval"]["hnsw"])
    ef, below = hnsw.ef_search, hnsw.filter_exact_below
    filled_path = d / "filled_attributes.json"
    # keyword arguments are evaluated in order: the files first, the (slow) encoders last
    return EngineState(
        items=pd.read_parquet(d / "items.parquet"),
        text_index=DenseIndex.load(d / "text_index", ef, below),
        image_index=DenseIndex.load(d / "image_index", ef, below),
        fused_index=DenseIndex.load(d / "fused_index", ef, below),
        color_feats=np.load(d / "color_feats.npy") if (d / "color_feats.npy").is_file() else None,
        popularity=np.load(d / "popularity.npy"),
        bm25=BM25Index.load(d / "bm25"),
        tfidf=TfidfIndex.load(d / "tfidf.pkl"),
        fusion=Fusion.load(d / "fusion"),
        low_conf_threshold=json.loads((d / "calibration.json").read_text())["low_confidence_threshold"],
        parser=QueryParser.from_json(json.loads((d / "query_parser.json").read_text())),
        alive=np.asarray(saved["alive"], dtype=bool),
        live_added=np.asarray(saved["live_added"], dtype=bool),
        item_colors=list(saved["item_colors"]),
        filled=json.loads(filled_path.read_text()) if filled_path.is_file() else {},
        price_log_z=np.load(d / PRICE_FILE) if (d / PRICE_FILE).is_file() else None,
        item_graph=_item_graph(d),
        photo_fingerprints=np.load(d / FINGERPRINTS_FILE) if (d / FINGERPRINTS_FILE).is_file() else None,
        photo_category=PhotoCategoryHead.load(d),
        rrf_tuning=rrf_tuning,
        ranker=ranker,
        params=engine_params,
        text_encoder=text_encoder if text_encoder is not None else _text_encoder(engine_params),
        image_encoder=image_encoder if image_encoder is not None else load_image_encoder(d, saved),
    )


def _item_graph(d: Path) -> ItemGraph | None:
    """The saved engine's transform graph (None for an engine saved without ``price_log_z.npy``)."""
    if not (d / PRICE_FILE).is_file():
        return None
    if not (d / TRANSFORM_DIR).is_dir():
        raise FileNotFoundError(f"{d} holds {PRICE_FILE} but not the transform graph it came from ({TRANSFORM_DIR}/)")
    return ItemGraph(str(d / TRANSFORM_DIR))


def _copy_dir(src: Path, dst: Path) -> None:
    """A directory the engine needs (CLIP's weights, the transform graph) copied next to it, so that a pushed bundle
    carries it."""
    if dst.exists() and dst.resolve() == src.resolve():
        return
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)


def _text_encoder(engine_params: Mapping[str, Any]) -> Any:
    from modules.encoders.text import text_encoder_from_params

    return text_encoder_from_params({"encoders": engine_params.get("encoders", {})})


def load_image_encoder(d: Path, saved: Mapping[str, Any]) -> Any:
    """The image encoder a saved engine refers to: CLIP from its own copy (else by name), else the tower next to the
    engine."""
    ref = saved.get("image_encoder")
    if not ref:
        return None
    if ref.get("kind") == "clip":
        from modules.encoders.clip import ClipEncoder

        own = d / ref.get("dir", CLIP_DIR)
        if (own / "config.json").is_file():      # the copy saved with the engine (engines saved before: a path)
            return ClipEncoder(own)
        clip_model = saved["params"].get("encoders", {}).get("image", {}).get("clip_model") or ref.get("name")
        return ClipEncoder(clip_model)
    for tower_dir in (d / ref.get("dir", "image_tower"), d.parent / ref.get("dir", "image_tower")):
        if tower_dir.is_dir():
            from modules.encoders.image_space import load_image_encoder as load_tower

            return load_tower(tower_dir, saved["params"])
    raise FileNotFoundError(f"image tower not found next to {d} (expected {d / 'image_tower'}); pass "
                            "image_encoder= to SearchEngine.load")
