"""Load one version directory (`SERVING_DIR/<version>/`) into a :class:`ServingBundle`.

:func:`build_bundle` verifies every checksum (`modules.bundle.verify_bundle`), loads the SearchEngine (and
recommender) through a :data:`BundleLoader`, builds the display records and image paths from the engine's
item table, and runs a smoke query. It swaps nothing: serving/bundle_manager.py decides what serves.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modules.bundle import BundleError, verify_bundle
from serving.rwlock import RWLock

log = logging.getLogger("pixelmatch.serving")

REQUIRED_MANIFEST_KEYS = ("files",)
ITEM_FIELDS = ("item_id", "title", "description", "category", "brand", "price", "gender", "image_path")
# items.csv columns that are not free attributes
_CORE_COLUMNS = {*ITEM_FIELDS, "created_at"}


def _clean(value: Any) -> Any:
    """pandas/numpy scalars -> JSON-friendly Python values (NaN -> None)."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


@dataclass
class ServingBundle:
    """Everything one request needs; the engine and tables change only under `lock.write()`."""

    version: str
    path: Path
    manifest: dict[str, Any]
    engine: Any                          # modules.search.SearchEngine
    recommender: Any | None              # modules.recommend.hybrid.HybridRecommender
    items: dict[str, dict[str, Any]]     # item_id -> display record (bundle + live items)
    image_files: dict[str, Path]         # item_id -> image file inside the bundle or delta_images/
    loaded_at: float = field(default_factory=time.time)
    # Searches take lock.read() (many at once); live adds/deletes take lock.write(). The recommender is not
    # known to be thread-safe, so recommend calls take lock.write() too.
    lock: RWLock = field(default_factory=RWLock)
    live_added: set[str] = field(default_factory=set)
    live_deleted: set[str] = field(default_factory=set)


BundleLoader = Callable[[Path, dict], tuple[Any, Any | None]]


def load_components(version_dir: Path, params: dict) -> tuple[Any, Any | None]:
    """Default loader: SearchEngine from `search/` with the LambdaMART re-ranker from `ranker/` (optional),
    HybridRecommender from `recommend/` (optional). The query encoder is the bundle's ONNX runtime
    (`model/text_runtime/`) when it has one and encoders.text.runtime.kind is onnx, else the TF encoder."""
    from modules.search import SearchEngine
    from modules.search.features import item_matches

    ranker = None
    if (version_dir / "ranker").is_dir():
        from modules.search.rerank import LambdaMARTRanker

        ranker = LambdaMARTRanker.load(version_dir / "ranker")
    engine = SearchEngine.load(version_dir / "search", params=params, ranker=ranker,
                               text_encoder=runtime_text_encoder(version_dir, params))
    item_matches(engine.state).warm(engine.state)   # every colour's / pattern's rows now, not on a first query
    recommender = None
    if (version_dir / "recommend").is_dir():
        from modules.recommend.hybrid import HybridRecommender

        recommender = HybridRecommender.load(version_dir / "recommend")
    return engine, recommender


def runtime_text_encoder(version_dir: Path, params: dict) -> Any | None:
    """The bundle's onnxruntime query encoder, or None (SearchEngine.load then builds the TF one)."""
    from modules.encoders.text_runtime import RUNTIME_FILE, load_runtime, runtime_params

    rt_dir = version_dir / "model" / "text_runtime"
    if runtime_params(params).kind != "onnx" or not (rt_dir / RUNTIME_FILE).is_file():
        log.info("%s: no ONNX text runtime; using the TensorFlow text encoder", version_dir.name)
        return None
    return load_runtime(rt_dir, params)


def item_table(engine: Any, version_dir: Path) -> pd.DataFrame:
    """The catalogue the engine indexes: `engine.items` if it has one, else `search/items.parquet`."""
    items = getattr(engine, "items", None)
    if isinstance(items, pd.DataFrame):
        alive = getattr(engine, "alive", None)   # SearchEngine keeps tombstoned rows with alive=False
        if alive is not None and len(alive) == len(items):
            items = items[np.asarray(alive, dtype=bool)]
        return items.drop_duplicates("item_id", keep="last")
    path = version_dir / "search" / "items.parquet"
    if path.is_file():
        return pd.read_parquet(path)
    raise BundleError(f"{version_dir}: no item table (engine.items or search/items.parquet)")


def _records_and_images(df: pd.DataFrame, version_dir: Path) -> tuple[dict[str, dict], dict[str, Path]]:
    records: dict[str, dict[str, Any]] = {}
    images: dict[str, Path] = {}
    root = version_dir.resolve()
    attr_cols = [c for c in df.columns if c not in _CORE_COLUMNS]
    for row in df.to_dict(orient="records"):
        item_id = str(row["item_id"])
        rec = {k: _clean(row.get(k)) for k in ITEM_FIELDS if k in row}
        rec["item_id"] = item_id
        rec["title"] = str(rec.get("title") or "")
        rec["attributes"] = {c: str(v) for c in attr_cols if (v := _clean(row.get(c))) not in (None, "")}
        records[item_id] = rec
        rel = rec.get("image_path")
        if rel:
            # Resolved once, at load time, from the bundle's own table; must stay inside the bundle.
            p = (root / str(rel)).resolve()
            if root in p.parents and p.is_file():
                images[item_id] = p
    return records, images


def build_bundle(version: str, vdir: Path, params: dict, loader: BundleLoader,
                 prepare: Callable[[ServingBundle], None] | None = None) -> ServingBundle:
    """Verify and load one version completely (no swap). Raises on any problem.

    `prepare(bundle)` runs on the freshly loaded bundle before the smoke query (e.g. plug TF Serving in)."""
    manifest = verify_bundle(vdir)
    missing = [k for k in REQUIRED_MANIFEST_KEYS if k not in manifest]
    if missing:
        raise BundleError(f"{vdir}/manifest.json lacks {missing}")
    engine, recommender = loader(vdir, params)
    df = item_table(engine, vdir)
    if df.empty:
        raise BundleError(f"{vdir}: the item table is empty")
    records, images = _records_and_images(df, vdir)
    bundle = ServingBundle(version=version, path=vdir, manifest=manifest, engine=engine,
                           recommender=recommender, items=records, image_files=images)
    if prepare is not None:
        prepare(bundle)
    smoke_test(bundle)
    return bundle


def smoke_test(bundle: ServingBundle) -> None:
    """The index and query encoder must answer with a catalogue item before we serve them."""
    first_id = next(iter(bundle.items))
    probe = bundle.items[first_id]["title"] or first_id
    try:
        with bundle.lock.read():
            resp = bundle.engine.search_text(probe, top_k=1)
    except Exception as exc:  # any failure here means the bundle is unusable
        raise BundleError(f"{bundle.path}: smoke query failed: {type(exc).__name__}: {exc}") from exc
    if not resp.results or str(resp.results[0].item_id) not in bundle.items:
        raise BundleError(f"{bundle.path}: smoke query returned no catalogue item")
