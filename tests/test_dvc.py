"""dvc.yaml wires generate -> pipeline -> benchmark from params.yaml, and dvc.lock records a finished repro."""
from __future__ import annotations

from pathlib import Path

import yaml

from modules.config import load_params

REPO = Path(__file__).resolve().parent.parent


def _outs(stage: dict) -> list[str]:
    return [next(iter(o)) if isinstance(o, dict) else o for o in stage.get("outs", []) + stage.get("metrics", [])]


def test_stages_chain_generate_pipeline_benchmark() -> None:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert list(stages) == ["generate", "pipeline", "benchmark"]
    assert "reports/data_manifest.json" in _outs(stages["generate"])
    assert {"data", "reports/data_manifest.json"} <= set(stages["pipeline"]["deps"])
    assert "serving_dir" in _outs(stages["pipeline"]) and "serving_dir" in stages["benchmark"]["deps"]
    params = load_params()
    for name, stage in stages.items():
        for key in stage.get("params", []):
            assert key in params, f"stage {name} reads params.yaml key {key!r}, which does not exist"
    metric = stages["benchmark"]["metrics"][0]["docs/benchmark_results.json"]
    assert metric["persist"] is True  # the file holds every scale's section; DVC must not delete it first


def test_lock_records_every_stage_and_data_is_tracked() -> None:
    lock = yaml.safe_load((REPO / "dvc.lock").read_text())["stages"]
    assert set(lock) == {"generate", "pipeline", "benchmark"}
    tracked = yaml.safe_load((REPO / "data.dvc").read_text())["outs"][0]
    assert tracked["path"] == "data" and tracked["nfiles"] > 0
    assert "/data" in (REPO / ".gitignore").read_text().split()
