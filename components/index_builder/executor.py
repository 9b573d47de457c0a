"""IndexBuilder logic: fusion + FAISS HNSW + lexical indexes + item metadata, saved by SearchEngine.save."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from components.common import load_items
from components.example_gen.executor import read_cutoff
from modules.data.data_io import (
    EMB_ATTRIBUTES_FILE,
    EMB_COLOR_NAMES_FILE,
    EMB_IDS_FILE,
    EMB_TOWER_DIR,
    load_embedding_rows,
)

log = logging.getLogger(__name__)


def popularity(data_dir: str | Path, item_ids: list[str]) -> np.ndarray:
    """Training-window interaction counts per item (0 for new SKUs and catalogs without history)."""
    path = Path(data_dir) / "interactions.csv"
    counts = np.zeros(len(item_ids), dtype=np.float32)
    if not path.is_file() or path.stat().st_size == 0:
        return counts
    inter = pd.read_csv(path, dtype={"item_id": str, "user_id": str})
    cutoff = read_cutoff(data_dir)
    if cutoff is not None:
        inter = inter[inter["ts"] < cutoff]
    return inter["item_id"].value_counts().reindex(item_ids, fill_value=0).to_numpy(dtype=np.float32)


def build(data_dir: str, emb_dir: str, out_dir: str, params: dict[str, Any], train_queries: list[dict], seed: int) -> dict:
    """Build the SearchEngine (without ranker) and save it to ``out_dir``."""
    from modules.attributes import apply_fills
    from modules.encoders.image_space import load_image_encoder
    from modules.encoders.text import text_encoder_from_params
    from modules.search import SearchEngine, calibrate_from_train_queries
    from modules.search.fusion import Fusion, build_train_pairs

    items = load_items(data_dir)
    item_ids = items["item_id"].astype(str).tolist()
    text_emb, image_emb, color = load_embedding_rows(emb_dir, item_ids)
    text_encoder = text_encoder_from_params(params)
    image_encoder = load_image_encoder(Path(emb_dir) / EMB_TOWER_DIR, params)
    attr_path = Path(emb_dir) / EMB_ATTRIBUTES_FILE
    fills = json.loads(attr_path.read_text())["filled"] if attr_path.is_file() else {}
    items, filled = apply_fills(items, fills)  # learned values become searchable attribute values
    fusion_params = params.get("fusion", {})
    method = str(fusion_params.get("method", "learned"))
    pairs = build_train_pairs(items, text_encoder, train_queries, seed=seed) if method == "learned" else None
    fusion = Fusion.build(method, text_emb, image_emb, fusion_params, seed=seed, train_pairs=pairs)
    ids = json.loads((Path(emb_dir) / EMB_IDS_FILE).read_text())
    names = dict(zip(ids, json.loads((Path(emb_dir) / EMB_COLOR_NAMES_FILE).read_text()), strict=True))
    engine = SearchEngine.build(
        items, text_emb, image_emb, color, text_encoder, image_encoder, params,
        fusion=fusion, popularity=popularity(data_dir, item_ids), item_colors=[names[i] for i in item_ids],
        filled=filled,
    )
    threshold = calibrate_from_train_queries(engine, train_queries, params, seed=seed)
    engine.save(out_dir)
    shutil.copytree(Path(emb_dir) / EMB_TOWER_DIR, Path(out_dir) / EMB_TOWER_DIR)  # SearchEngine.load finds it here
    return {"n_items": len(items), "fusion": method, "n_filled_items": len(filled),
            "n_fusion_pairs": 0 if pairs is None else len(pairs[1]),
            "low_confidence_threshold": threshold}
