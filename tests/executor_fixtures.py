"""Run a custom component's executor as TFX's launcher does, outside a pipeline: for tests that chain real
executors (tests/test_executors_gfile.py, tests/test_clip_pipeline.py)."""
from __future__ import annotations

from typing import Any

import tensorflow as tf


def make_artifact(kind: type, uri: str) -> Any:
    """An artifact of type ``kind`` at ``uri`` (a path or any tf.io.gfile URI), its directory created as the
    launcher creates every output directory before the executor runs."""
    art = kind()
    art.uri = uri
    tf.io.gfile.makedirs(uri)
    return art


def run_executor(component: Any, inputs: dict[str, Any], outputs: dict[str, Any], props: dict[str, Any]) -> None:
    """``component``'s executor ``Do`` with one artifact per input / output name and the exec properties."""
    executor = component.EXECUTOR_SPEC.executor_class()
    executor.Do({k: [v] for k, v in inputs.items()}, {k: [v] for k, v in outputs.items()}, props)


def run_pipeline_transform(data_dir: Any, root: Any) -> dict[str, Any]:
    """The pipeline's own Transform (its exec properties as pipelines/pipeline.py sets them: preprocessing_fn,
    custom_config, splits_config) run by its executor on DataExampleGen's items of ``data_dir``, statistics off.
    Returns the ``transform_graph`` and ``transformed_examples`` artifacts, under ``root``."""
    from tfx.types.standard_artifacts import Examples, Schema, TransformGraph
    from tfx.utils import proto_utils

    from components.example_gen.component import DataExampleGen
    from pipelines.local_runner import build
    from pipelines.pipeline import SCHEMA_DIR

    ex = {name: make_artifact(Examples, f"{root}/{name}") for name in ("items", "interactions", "queries")}
    run_executor(DataExampleGen, {}, ex, {"data_dir": str(data_dir), "data_hash": "transform-test"})
    node = {c.id: c for c in build(str(data_dir), f"{root}/serving", f"{root}/pipeline_root", None).components}[
        "Transform"]
    props = {k: proto_utils.proto_to_json(v) if hasattr(v, "DESCRIPTOR") else v
             for k, v in node.exec_properties.items() if v is not None}
    schema = make_artifact(Schema, str(SCHEMA_DIR / "items"))
    out = {"transform_graph": make_artifact(TransformGraph, f"{root}/transform_graph"),
           "transformed_examples": make_artifact(Examples, f"{root}/transformed_examples")}
    run_executor(type(node), {"examples": ex["items"], "schema": schema}, out, {**props, "disable_statistics": 1})
    return {**out, "examples": ex}
