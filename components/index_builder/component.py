"""IndexBuilder: the search engine (FAISS HNSW over fused embeddings, BM25/TF-IDF, item metadata) as a Model.

The engine is written by ``SearchEngine.save`` at ``search_engine.uri/Format-Serving``, the layout TFX
uses for servable models, so the Resolver and the pusher treat it like any other Model.
"""
# No "from __future__ import annotations": the @component decorator reads real type hints.
import os

from tfx.types.standard_artifacts import Examples, Model

from components.artifacts import Embeddings
from components.common import SERVING_SUBDIR, local_dirs, params_and_seed, read_queries, record_output
from components.index_builder import executor
from components.tfx_types import InputArtifact, OutputArtifact, Parameter, component


@component
def IndexBuilder(  # noqa: N802
    embeddings: InputArtifact[Embeddings],
    queries: InputArtifact[Examples],
    search_engine: OutputArtifact[Model],
    data_dir: Parameter[str],
    params_json: Parameter[str] = "",
) -> None:
    """Build and save the search engine; the learned fusion sees TRAIN-split queries only."""
    params, seed = params_and_seed(params_json)
    with local_dirs({"data": data_dir, "embeddings": embeddings}, {"engine": search_engine}) as local:
        info = executor.build(local["data"], local["embeddings"], os.path.join(local["engine"], SERVING_SUBDIR), params,
                              read_queries(queries, "train"), seed=seed)
    record_output(search_engine, "build_info.json", info, ints={"n_items": info["n_items"]},
                  strings={"fusion": info["fusion"]})
