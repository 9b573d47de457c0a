"""notebooks/explore.ipynb executes headless against a real pipeline run (slow: runs the tiny pipeline)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from feast_fixtures import empty_feature_repo

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_explore_notebook_executes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(os.environ.get("PIXELMATCH_PIPELINE_ROOT", REPO / "pipeline_root"))
    mlflow_dir = Path(os.environ.get("PIXELMATCH_MLFLOW_DIR", REPO / "mlflow"))
    if not (root / "metadata.sqlite").is_file():  # no run here yet: make one on the tiny catalog
        from modules.data.catalog.generate import generate_catalog
        from pipelines.local_runner import EXIT_OK, run_pipeline

        root, mlflow_dir = tmp_path / "root", tmp_path / "mlflow"
        monkeypatch.setenv("PIXELMATCH_MLFLOW_DIR", str(mlflow_dir))
        generate_catalog("tiny", tmp_path / "data", seed=42)
        repo = empty_feature_repo(tmp_path)
        code = run_pipeline(str(tmp_path / "data"), str(tmp_path / "serving"), pipeline_root=str(root),
                            feature_repo=str(repo))
        assert code == EXIT_OK
    env = {**os.environ, "PIXELMATCH_PIPELINE_ROOT": str(root), "PIXELMATCH_MLFLOW_DIR": str(mlflow_dir)}
    out = tmp_path / "explore.out.ipynb"
    proc = subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
         "--ExecutePreprocessor.timeout=300", "--output", str(out), str(REPO / "notebooks" / "explore.ipynb")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    assert "ndcg@10" in text and "image/png" in text
