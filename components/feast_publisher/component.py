"""FeastPublisher: item and user features to the offline store (Parquet), then Feast apply + materialize."""
# No "from __future__ import annotations": the @component decorator reads real type hints.
import json
import logging
import os

from tfx.types.standard_artifacts import PushedModel

from components.artifacts import Embeddings, FeatureStoreState
from components.common import local_dirs, params_from
from components.feast_publisher import executor
from components.tfx_types import InputArtifact, OutputArtifact, Parameter, component

log = logging.getLogger(__name__)


@component
def FeastPublisher(  # noqa: N802
    embeddings: InputArtifact[Embeddings],
    pushed: InputArtifact[PushedModel],
    state: OutputArtifact[FeatureStoreState],
    data_dir: Parameter[str],
    feature_repo_dir: Parameter[str],
    params_json: Parameter[str] = "",
) -> None:
    """Publish features after the push, so the online store matches the served bundle."""
    if pushed.get_int_custom_property("pushed") != 1:
        log.warning("FeastPublisher: nothing new was pushed, the online store keeps the served bundle's features")
        state.set_int_custom_property("published", 0)
        return
    with local_dirs({"data": data_dir, "embeddings": embeddings}, {"state": state}) as local:
        info = executor.publish(local["data"], local["embeddings"], feature_repo_dir, params_from(params_json))
        os.makedirs(local["state"], exist_ok=True)
        with open(os.path.join(local["state"], "feast.json"), "w") as f:
            json.dump(info, f, indent=2)
    state.set_int_custom_property("n_items", info["n_items"])
    state.set_int_custom_property("n_users", info["n_users"])
    state.set_string_custom_property("repo", info["repo"])
    state.set_int_custom_property("published", 1)
    log.info("FeastPublisher: %s", info)
