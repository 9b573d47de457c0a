"""The same pipeline compiles to a Kubeflow Pipelines V2 JSON spec, with every component in it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("tfx")

EXPECTED = {
    "DataExampleGen",
    "StatisticsGen.items", "ImportSchemaGen.items", "ExampleValidator.items",
    "StatisticsGen.interactions", "ImportSchemaGen.interactions", "ExampleValidator.interactions",
    "StatisticsGen.queries", "ImportSchemaGen.queries", "ExampleValidator.queries",
    "DataCheck", "Transform", "EmbeddingGen", "TwoTowerTrainer", "IndexBuilder", "RankerTrainer",
    "latest_blessed_model_resolver", "RetrievalEvaluator", "BundlePusher", "FeastPublisher",
}


def test_kubeflow_v2_spec_has_every_component(tmp_path: Path) -> None:
    from pipelines.kubeflow_runner import compile_pipeline

    out = compile_pipeline("/data", str(tmp_path / "spec.json"), data_hash="test")
    spec = json.loads(out.read_text())
    pipeline_spec = spec.get("pipelineSpec", spec)
    tasks = set(pipeline_spec["root"]["dag"]["tasks"])
    # the resolver compiles to its own tasks; every other component is one task named by its id
    missing = {c for c in EXPECTED if not any(t == c or t.startswith(c) for t in tasks)}
    assert not missing, f"components missing from the spec: {missing}; tasks: {sorted(tasks)}"
    executors = pipeline_spec["deploymentSpec"]["executors"]
    assert any("DataCheck" in name for name in executors)
    assert pipeline_spec["pipelineInfo"]["name"] == "pixelmatch"
