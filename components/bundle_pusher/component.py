"""BundlePusher: pushes the blessed bundle to SERVING_DIR/<version>/ atomically, then moves LATEST.

Gated by the RetrievalEvaluator blessing: a run that is not blessed pushes nothing and leaves the
serving directory untouched. The manifest ties together the versions, metrics, data hash and MLMD ids.
"""
# No "from __future__ import annotations": the @component decorator reads real type hints.
import logging
import os
from pathlib import Path

from tfx import v1 as tfx
from tfx.types.standard_artifacts import Model, ModelBlessing, PushedModel, TransformGraph

from components.artifacts import Embeddings, RetrievalMetrics
from components.bundle_pusher import executor
from components.common import SERVING_SUBDIR, params_from
from components.tfx_types import InputArtifact, OutputArtifact, Parameter

log = logging.getLogger(__name__)


@tfx.dsl.components.component
def BundlePusher(  # noqa: N802
    search_engine: InputArtifact[Model],
    ranker: InputArtifact[Model],
    embeddings: InputArtifact[Embeddings],
    transform_graph: InputArtifact[TransformGraph],
    blessing: InputArtifact[ModelBlessing],
    metrics: InputArtifact[RetrievalMetrics],
    pushed_model: OutputArtifact[PushedModel],
    serving_dir: Parameter[str],
    data_dir: Parameter[str],
    data_hash: Parameter[str],
    version: Parameter[str] = "",
    params_json: Parameter[str] = "",
    two_tower: InputArtifact[Model] = None,  # optional input
) -> None:
    """Push search/, ranker/, model/ and manifest.json when the run is blessed."""
    if blessing.get_int_custom_property("blessed") != 1:
        reasons = blessing.get_string_custom_property("reasons")
        pushed_model.set_int_custom_property("pushed", 0)
        msg = f"not blessed, nothing pushed; {serving_dir} left untouched ({reasons})"
        log.warning("BundlePusher: %s", msg)
        print(f"[pixelmatch] BundlePusher: {msg}")
        return
    current = executor.same_as_serving(serving_dir, search_engine.id, ranker.id, data_hash)
    if current:
        pushed_model.set_int_custom_property("pushed", 0)
        pushed_model.set_string_custom_property("pushed_version", current)
        msg = f"{serving_dir}/{current} already serves this search engine and ranker: nothing new to push"
        log.info("BundlePusher: %s", msg)
        print(f"[pixelmatch] BundlePusher: {msg}")
        return
    params = params_from(params_json)
    version = version or executor.default_version(data_hash)
    staging = Path(pushed_model.uri) / "staging"
    layout = executor.stage_bundle(
        staging,
        search_dir=os.path.join(search_engine.uri, SERVING_SUBDIR),
        ranker_dir=os.path.join(ranker.uri, SERVING_SUBDIR),
        transform_dir=transform_graph.uri,
        two_tower_dir=os.path.join(two_tower.uri, SERVING_SUBDIR) if two_tower is not None else None,
        params=params,
        data_dir=data_dir,
        emb_dir=embeddings.uri,
    )
    mlmd_ids = {
        "search_engine": search_engine.id,
        "ranker": ranker.id,
        "embeddings": embeddings.id,
        "transform_graph": transform_graph.id,
        "blessing": blessing.id,
        "metrics": metrics.id,
    }
    if two_tower is not None:
        mlmd_ids["two_tower"] = two_tower.id
    extra = {
        "data_hash": data_hash,
        "data_dir": os.path.abspath(data_dir),
        "mlmd_ids": mlmd_ids,
        "blessing": {"blessed": True, "reasons": blessing.get_string_custom_property("reasons")},
        "mlflow_parent_run_id": os.environ.get("PIXELMATCH_MLFLOW_PARENT_RUN_ID", ""),
    }
    final = executor.push(
        staging, serving_dir, version, layout, os.path.join(metrics.uri, "metrics.json"), extra
    )
    pushed_model.set_int_custom_property("pushed", 1)
    pushed_model.set_string_custom_property("pushed_destination", str(final))
    pushed_model.set_string_custom_property("pushed_version", version)
    log.info("BundlePusher: pushed %s", final)
    print(f"[pixelmatch] pushed bundle {final}")
