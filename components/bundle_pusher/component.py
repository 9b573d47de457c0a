"""BundlePusher: pushes the blessed bundle to SERVING_DIR/<version>/ atomically, then moves LATEST.

Gated by the RetrievalEvaluator blessing: a run that is not blessed pushes nothing and leaves the
serving directory untouched. The manifest ties together the versions, metrics, data hash and MLMD ids.
"""
# No "from __future__ import annotations": the @component decorator reads real type hints.
import logging
import os
from pathlib import Path

from tfx.types.standard_artifacts import Model, ModelBlessing, PushedModel, TransformGraph

from components.artifacts import Embeddings, RetrievalMetrics
from components.bundle_pusher import executor
from components.common import SERVING_SUBDIR, local_dirs, params_from
from components.tfx_types import InputArtifact, OutputArtifact, Parameter, component

log = logging.getLogger(__name__)


@component
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
    inputs = {"data": data_dir, "engine": search_engine, "ranker": ranker, "transform": transform_graph,
              "two_tower": two_tower, "embeddings": embeddings, "metrics": metrics}
    with local_dirs(inputs, {"pushed": pushed_model}) as local:
        ids = {"search_engine": search_engine, "ranker": ranker, "embeddings": embeddings,
               "transform_graph": transform_graph, "blessing": blessing, "metrics": metrics, "two_tower": two_tower}
        final = _stage_and_push(local, params, version, serving_dir, _extra(data_hash, data_dir, blessing, ids))
    pushed_model.set_int_custom_property("pushed", 1)
    pushed_model.set_string_custom_property("pushed_destination", str(final))
    pushed_model.set_string_custom_property("pushed_version", version)
    log.info("BundlePusher: pushed %s", final)
    print(f"[pixelmatch] pushed bundle {final}")


def _stage_and_push(local: dict, params: dict, version: str, serving_dir: str, extra: dict) -> Path:
    """Stage the bundle from the (local) input directories, then push it into ``serving_dir`` (a local path)."""
    staging = Path(local["pushed"]) / "staging"
    layout = executor.stage_bundle(
        staging,
        search_dir=os.path.join(local["engine"], SERVING_SUBDIR),
        ranker_dir=os.path.join(local["ranker"], SERVING_SUBDIR),
        transform_dir=local["transform"],
        two_tower_dir=os.path.join(local["two_tower"], SERVING_SUBDIR) if local["two_tower"] is not None else None,
        params=params,
        data_dir=local["data"],
        emb_dir=local["embeddings"],
    )
    return executor.push(staging, serving_dir, version, layout, os.path.join(local["metrics"], "metrics.json"), extra)


def _extra(data_hash: str, data_dir: str, blessing: ModelBlessing, artifacts: dict) -> dict:
    """The manifest's provenance: data hash and path, the MLMD ids of the input ``artifacts`` (name -> artifact,
    None for an absent optional input), the blessing, the MLflow parent run."""
    return {
        "data_hash": data_hash,
        "data_dir": data_dir if "://" in data_dir else os.path.abspath(data_dir),
        "mlmd_ids": {name: art.id for name, art in artifacts.items() if art is not None},
        "blessing": {"blessed": True, "reasons": blessing.get_string_custom_property("reasons")},
        "mlflow_parent_run_id": os.environ.get("PIXELMATCH_MLFLOW_PARENT_RUN_ID", ""),
    }
