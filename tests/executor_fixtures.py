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
