"""EmbeddingGen: text (SBERT), image (LiT-style tower trained here) and colour features for every item."""
# No "from __future__ import annotations": the @component decorator reads real type hints.
import json
import logging
import os

from tfx import v1 as tfx

from components.artifacts import DataReport, Embeddings
from components.common import params_from
from components.embedding_gen import executor
from components.tfx_types import InputArtifact, OutputArtifact, Parameter
from modules.config import param_seed

log = logging.getLogger(__name__)


@tfx.dsl.components.component
def EmbeddingGen(  # noqa: N802
    data_report: InputArtifact[DataReport],
    embeddings: OutputArtifact[Embeddings],
    data_dir: Parameter[str],
    data_hash: Parameter[str],
    params_json: Parameter[str] = "",
) -> None:
    """Embed every item of the checked catalog (data_report proves DataCheck passed on this data)."""
    params = params_from(params_json)
    stats = executor.generate(data_dir, embeddings.uri, params, seed=param_seed(params))
    with open(os.path.join(embeddings.uri, "stats.json"), "w") as f:
        json.dump(stats, f, indent=2)
    for key in ("n_items", "n_with_image", "text_dim", "image_dim"):
        embeddings.set_int_custom_property(key, int(stats[key]))
    embeddings.set_string_custom_property("data_hash", data_hash)
    log.info("EmbeddingGen: %s", stats)
