"""IndexBuilder logic: fusion + FAISS HNSW + lexical indexes + item metadata + Transform's per-row price feature +
calibration (``modules.search.build.build_engine``, the build path ``pixelmatch benchmark`` uses too), saved by
SearchEngine.save (which also copies the transform graph into the engine: live adds apply it)."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from modules.data.data_io import EMB_TOWER_DIR


def build(data_dir: str, emb_dir: str, out_dir: str, params: dict[str, Any], train_queries: list[dict], seed: int,
          transform_dir: str | None = None, examples_dir: str | None = None) -> dict:
    """Build the SearchEngine (without ranker) and save it to ``out_dir``. ``transform_dir`` / ``examples_dir``:
    Transform's ``transform_graph`` and ``transformed_examples`` (absent: the catalog is analysed in-process)."""
    from modules.encoders.text_runtime import served_query_encoder
    from modules.search.build import build_engine, load_embeddings

    # queries encoded as the bundle will serve them (the RRF tuning and the calibration run here; RankerTrainer and
    # RetrievalEvaluator load the engine with the same encoder)
    built = build_engine(load_embeddings(data_dir, emb_dir, params), data_dir, params, train_queries, seed,
                         transform_dir=transform_dir, examples_dir=examples_dir,
                         query_encoder=served_query_encoder(params))
    built.engine.save(out_dir)
    shutil.copytree(Path(emb_dir) / EMB_TOWER_DIR, Path(out_dir) / EMB_TOWER_DIR)  # SearchEngine.load finds it here
    return built.info
