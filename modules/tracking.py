"""Experiment tracking: MLflow (sqlite store under mlflow/) and CodeCarbon emissions per training step.

One parent MLflow run per pipeline run (opened by the runner, its id exported in
``PIXELMATCH_MLFLOW_PARENT_RUN_ID``) and one child run per step that trains or evaluates. The parent id
travels through the environment, not through component parameters, so it never breaks the TFX cache.
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modules.config import REPO_ROOT

log = logging.getLogger(__name__)
PARENT_ENV = "PIXELMATCH_MLFLOW_PARENT_RUN_ID"
TRACKING_DIR_ENV = "PIXELMATCH_MLFLOW_DIR"
EXPERIMENT = "pixelmatch"


def mlflow_dir() -> Path:
    """mlflow/ at the repo root unless $PIXELMATCH_MLFLOW_DIR says otherwise (tests use a temp dir)."""
    return Path(os.environ.get(TRACKING_DIR_ENV, REPO_ROOT / "mlflow")).resolve()


def tracking_uri() -> str:
    return f"sqlite:///{mlflow_dir() / 'mlflow.db'}"


def _mlflow() -> Any:
    import mlflow

    root = mlflow_dir()
    root.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri())
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        mlflow.create_experiment(EXPERIMENT, artifact_location=(root / "artifacts").as_uri())
    mlflow.set_experiment(EXPERIMENT)
    return mlflow


def start_parent_run(run_name: str, params: dict[str, Any] | None = None, tags: dict[str, str] | None = None) -> str:
    """Open the pipeline-level run, export its id for the components, and return it (left open)."""
    mlflow = _mlflow()
    run = mlflow.start_run(run_name=run_name, tags=tags or {})
    if params:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
    os.environ[PARENT_ENV] = run.info.run_id
    return run.info.run_id


def end_parent_run(status: str = "FINISHED", metrics: dict[str, float] | None = None) -> None:
    mlflow = _mlflow()
    if metrics:
        mlflow.log_metrics(metrics)
    mlflow.end_run(status=status)
    os.environ.pop(PARENT_ENV, None)


@contextlib.contextmanager
def child_run(name: str, params: dict[str, Any] | None = None) -> Iterator[Any]:
    """A child MLflow run of the current pipeline run (a standalone run when there is no parent)."""
    mlflow = _mlflow()
    parent = os.environ.get(PARENT_ENV)
    tags = {"mlflow.parentRunId": parent} if parent else {}
    client = mlflow.tracking.MlflowClient()
    exp = mlflow.get_experiment_by_name(EXPERIMENT)
    run = client.create_run(exp.experiment_id, run_name=name, tags=tags)
    with mlflow.start_run(run_id=run.info.run_id, nested=mlflow.active_run() is not None) as active:
        if params:
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        yield active


@contextlib.contextmanager
def emissions(step: str, output_dir: str | Path, country_iso_code: str | None = None) -> Iterator[dict[str, float]]:
    """Track one training step's energy and CO2 offline with CodeCarbon; log them to the active MLflow run.

    Yields a dict that is filled on exit with ``emissions_kg``, ``energy_kwh`` and ``duration_s``. The
    CodeCarbon CSV (``emissions.csv``) stays in ``output_dir`` and is logged as an MLflow artifact.
    """
    from codecarbon import OfflineEmissionsTracker

    if country_iso_code is None:
        from modules.config import load_params

        country_iso_code = str(load_params().get("pipeline", {}).get("codecarbon_country", "FRA"))
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, float] = {}
    tracker = OfflineEmissionsTracker(
        country_iso_code=country_iso_code,
        output_dir=str(output_dir),
        project_name=f"pixelmatch-{step}",
        log_level="error",
        save_to_file=True,
        tracking_mode="process",
    )
    start = time.time()
    tracker.start()
    try:
        yield result
    finally:
        kg = tracker.stop()
        data = tracker.final_emissions_data
        result["emissions_kg"] = float(kg or 0.0)
        result["energy_kwh"] = float(getattr(data, "energy_consumed", 0.0) or 0.0)
        result["duration_s"] = time.time() - start
        try:
            mlflow = _mlflow()
            if mlflow.active_run() is not None:
                mlflow.log_metrics({f"{step}_emissions_kg": result["emissions_kg"], f"{step}_energy_kwh": result["energy_kwh"]})
                csv = output_dir / "emissions.csv"
                if csv.is_file():
                    mlflow.log_artifact(str(csv), artifact_path="emissions")
        except Exception as exc:  # tracking must never fail a training step
            log.warning("could not log emissions to MLflow: %s", exc)
