"""IndexBuilder: the search engine (FAISS HNSW over fused embeddings, BM25/TF-IDF, item metadata) as a Model.

The engine is written by ``SearchEngine.save`` at ``search_engine.uri/Format-Serving``, the layout TFX
uses for servable models, so the Resolver and the pusher treat it like any other Model. Transform's
``transform_graph`` and transformed items give the engine its per-row ``price_log_z`` (the re-ranker's price
feature) and the graph it keeps for live adds; the pipeline always wires them (executor tests that chain
executors without Transform leave them out, and the catalog is then analysed in-process, ``item_features``
records which).
"""
# No "from __future__ import annotations": the @component decorator reads real type hints.
import os

from tfx.types.standard_artifacts import Examples, Model, TransformGraph

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
    transform_graph: InputArtifact[TransformGraph] = None,  # optional input (see the module docstring)
    transformed_items: InputArtifact[Examples] = None,  # optional input, with transform_graph
) -> None:
    """Build and save the search engine; the learned fusion sees TRAIN-split queries only."""
    params, seed = params_and_seed(params_json)
    if (transform_graph is None) != (transformed_items is None):
        raise ValueError("IndexBuilder takes Transform's transform_graph and transformed_items together")
    staged = local_dirs({"data": data_dir, "embeddings": embeddings, "transform_graph": transform_graph,
                         "transformed_items": transformed_items}, {"engine": search_engine})
    with staged as local:
        info = executor.build(local["data"], local["embeddings"], os.path.join(local["engine"], SERVING_SUBDIR), params,
                              read_queries(queries, "train"), seed=seed, transform_dir=local["transform_graph"],
                              examples_dir=local["transformed_items"])
    record_output(search_engine, "build_info.json", info, ints={"n_items": info["n_items"]},
                  strings={"fusion": info["fusion"], "item_features": info["item_features"]})
