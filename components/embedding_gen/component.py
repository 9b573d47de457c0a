"""EmbeddingGen: text (SBERT), image (LiT-style tower trained here) and colour features for every item."""
# No "from __future__ import annotations": the @component decorator reads real type hints.

from components.artifacts import DataReport, Embeddings
from components.common import local_dirs, params_and_seed, record_output
from components.embedding_gen import executor
from components.tfx_types import InputArtifact, OutputArtifact, Parameter, component


@component
def EmbeddingGen(  # noqa: N802
    data_report: InputArtifact[DataReport],
    embeddings: OutputArtifact[Embeddings],
    data_dir: Parameter[str],
    data_hash: Parameter[str],
    params_json: Parameter[str] = "",
) -> None:
    """Embed every item of the checked catalog (data_report proves DataCheck passed on this data)."""
    with local_dirs({"data": data_dir}, {"embeddings": embeddings}) as local:
        stats = executor.generate(local["data"], local["embeddings"], *params_and_seed(params_json))
    record_output(embeddings, "stats.json", stats, ints={k: stats[k] for k in ("n_items", "n_with_image", "text_dim",
                                                                                "image_dim")},
                  strings={"data_hash": data_hash})
