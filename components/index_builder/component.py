"""IndexBuilder: the search engine (FAISS HNSW over fused embeddings, BM25/TF-IDF, item metadata) as a Model.

The engine is written by ``SearchEngine.save`` at ``search_engine.uri/Format-Serving``, the layout TFX
uses for servable models, so the Resolver and the pusher treat it like any other Model.
"""
# No "from __future__ import annotations": the @component decorator reads real type hints.
import json
import logging
import os

from tfx import v1 as tfx
from tfx.types.standard_artifacts import Examples, Model

from components.artifacts import Embeddings
from components.common import SERVING_SUBDIR, params_from, read_queries
from components.index_builder import executor
from components.tfx_types import InputArtifact, OutputArtifact, Parameter
from modules.config import param_seed

log = logging.getLogger(__name__)


@tfx.dsl.components.component
def IndexBuilder(  # noqa: N802
    embeddings: InputArtifact[Embeddings],
    queries: InputArtifact[Examples],
    search_engine: OutputArtifact[Model],
    data_dir: Parameter[str],
    params_json: Parameter[str] = "",
) -> None:
    """Build and save the search engine; the learned fusion sees TRAIN-split queries only."""
    params = params_from(params_json)
    out = os.path.join(search_engine.uri, SERVING_SUBDIR)
    info = executor.build(
        data_dir, embeddings.uri, out, params, read_queries(queries, "train"), seed=param_seed(params)
    )
    with open(os.path.join(search_engine.uri, "build_info.json"), "w") as f:
        json.dump(info, f, indent=2)
    search_engine.set_int_custom_property("n_items", int(info["n_items"]))
    search_engine.set_string_custom_property("fusion", str(info["fusion"]))
    log.info("IndexBuilder: %s -> %s", info, out)
