"""Integration: the whole TFX pipeline on the tiny catalog with LocalDagRunner, then a cached rerun.

Asserts every component executed (MLMD), the blessing, the pushed bundle and its manifest, a Feast
online lookup for an item and a user, MLflow metrics and emissions, and that the rerun on unchanged
data is served from the TFX cache in under a third of the first run's time.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from feast_fixtures import empty_feature_repo

from pipelines.local_runner import EXIT_LOCKED, EXIT_OK, run_lock, run_pipeline

REPO = Path(__file__).resolve().parent.parent
NODES = {
    "DataExampleGen", "StatisticsGen.items", "ImportSchemaGen.items", "ExampleValidator.items",
    "StatisticsGen.interactions", "ImportSchemaGen.interactions", "ExampleValidator.interactions",
    "StatisticsGen.queries", "ImportSchemaGen.queries", "ExampleValidator.queries", "DataCheck", "Transform",
    "EmbeddingGen", "TwoTowerTrainer", "IndexBuilder", "RankerTrainer", "RetrievalEvaluator", "BundlePusher",
    "FeastPublisher",
}


def _executions_by_node(metadata_path: Path) -> tuple[dict[str, list[str]], Any]:
    """{node id: [execution states]} from the MLMD store of the pipeline root."""
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2
    from tfx.orchestration import metadata

    store = metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(str(metadata_path)))
    names = {v: k for k, v in metadata_store_pb2.Execution.State.items()}
    out: dict[str, list[str]] = {}
    for ctx in store.get_contexts_by_type("node"):
        node = ctx.name.split(".", 1)[1]
        executions = sorted(store.get_executions_by_context(ctx.id), key=lambda e: e.id)
        out[node] = [names[e.last_known_state] for e in executions]
    return out, store


def test_second_run_on_same_root_is_refused(tmp_path: Path, capsys) -> None:
    from modules.data.catalog.generate import generate_catalog

    data = tmp_path / "data"
    generate_catalog("tiny", data, seed=42)
    with run_lock(tmp_path / "root"):
        code = run_pipeline(str(data), str(tmp_path / "serving"), pipeline_root=str(tmp_path / "root"))
    assert code == EXIT_LOCKED
    assert "already using pipeline root" in capsys.readouterr().err
    assert not (tmp_path / "serving").exists()


def test_catalog_without_history_skips_recommendation_steps(tmp_path: Path) -> None:
    """Bring-your-own catalog with a header-only interactions.csv: no two-tower, no interaction validation."""
    from modules.data.catalog.generate import generate_catalog
    from pipelines.local_runner import build

    data = tmp_path / "data"
    generate_catalog("tiny", data, seed=42)
    (data / "interactions.csv").write_text("user_id,item_id,event,ts\n")
    ids = {c.id for c in build(str(data), str(tmp_path / "serving"), str(tmp_path / "root"), None).components}
    assert "TwoTowerTrainer" not in ids and "ExampleValidator.interactions" not in ids
    assert {"DataCheck", "EmbeddingGen", "IndexBuilder", "RankerTrainer", "BundlePusher", "FeastPublisher"} <= ids


def _check_progress_lines(root: Path) -> None:
    """One start and one end line per component, and the chatter, in the run log (the terminal gets the
    ``[pixelmatch]`` lines only: tests/test_progress.py checks that routing)."""
    logs = list((root / "logs").glob("run-*.log"))
    assert len(logs) == 1
    text = logs[0].read_text()
    lines = [ln for ln in text.splitlines() if ln.startswith("[pixelmatch]")]
    for node in NODES:
        assert sum(ln.endswith(f" {node} started") for ln in lines) == 1, (node, lines)
        assert sum(f" {node} done in " in ln for ln in lines) == 1, (node, lines)
    assert any("EmbeddingGen done in" in ln and "items" in ln and "-d" in ln for ln in lines), lines
    assert any("RetrievalEvaluator done in" in ln and "BLESSED" in ln for ln in lines), lines
    assert len([ln for ln in lines if " started" in ln or " done in " in ln]) <= 2 * len(NODES) + 2, lines
    assert "[pixelmatch] blessing: BLESSED" in text  # a component's own print: kept in the log


def _check_engine_fingerprints(engine_dir: Path) -> None:
    """EmbeddingGen's "same photo" fingerprints reached the pushed engine, one row per item (photo queries use them:
    modules/search/same_photo.py)."""
    import pandas as pd

    fingerprints = np.load(engine_dir / "photo_fingerprints.npy")
    assert fingerprints.dtype == np.uint8 and len(fingerprints) == len(pd.read_parquet(engine_dir / "items.parquet"))
    assert fingerprints.any(axis=1).mean() > 0.9   # the generated catalog's photos are all readable


def _check_engine_rrf_tuning(engine_dir: Path) -> None:
    """IndexBuilder tuned the text queries' RRF weights on held-out TRAIN queries, and the server's loader serves
    them over params.yaml's (modules/search/rrf_tuning.py)."""
    from modules.config import load_params
    from modules.search.persistence import RRF_TUNING_FILE, load_state

    report = json.loads((engine_dir / RRF_TUNING_FILE).read_text())
    assert report["queries"] >= 30 and report["ndcg_at_10"]["tuned"] >= report["ndcg_at_10"]["start"], report
    assert dict(load_state(engine_dir, params=load_params()).retrieval.rrf_weights) == report["weights"]


def _check_engine_price_feature(engine_dir: Path, store: Any) -> None:
    """The pushed engine's ranker ``price`` feature is Transform's price_log_z: IndexBuilder read Transform's
    transformed examples (not an in-process analysis), the values follow the preprocessing_fn's definition over the
    catalog, and the engine carries the graph its live adds apply."""
    import pandas as pd

    sources = [a.custom_properties["item_features"].string_value for a in store.get_artifacts_by_type("Model")
               if "item_features" in a.custom_properties]
    assert sources and set(sources) == {"transformed_examples"}, sources
    price = pd.read_parquet(engine_dir / "items.parquet")["price"].to_numpy(np.float64)
    log_price = np.log1p(np.maximum(price, 0.0))
    want = (log_price - log_price.mean()) / log_price.std()
    np.testing.assert_allclose(np.load(engine_dir / "price_log_z.npy"), want, atol=1e-4)
    assert (engine_dir / "transform_graph" / "transform_fn").is_dir()


@pytest.mark.integration  # runs in `make test` (CI): the whole tiny pipeline, twice
def test_pipeline_end_to_end_then_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from feast import FeatureStore

    from modules.bundle import read_latest, verify_bundle
    from modules.data.catalog.generate import generate_catalog

    data, serving, root = tmp_path / "data", tmp_path / "serving", tmp_path / "root"
    generate_catalog("tiny", data, seed=42)
    repo = empty_feature_repo(tmp_path)
    monkeypatch.setenv("PIXELMATCH_MLFLOW_DIR", str(tmp_path / "mlflow"))

    t0 = time.time()
    assert run_pipeline(str(data), str(serving), pipeline_root=str(root), feature_repo=str(repo)) == EXIT_OK
    first = time.time() - t0
    _check_progress_lines(root)

    runs, store = _executions_by_node(root / "metadata.sqlite")
    assert NODES <= set(runs), f"missing nodes: {NODES - set(runs)}"
    assert all(states == ["COMPLETE"] for node, states in runs.items() if node in NODES), runs

    blessings = store.get_artifacts_by_type("ModelBlessing")
    assert blessings and blessings[-1].custom_properties["blessed"].int_value == 1

    version = read_latest(serving)
    manifest = verify_bundle(serving / version)
    for role in ("model", "index", "ranker", "text_encoder", "transform", "recommend", "images"):
        assert (serving / version / manifest["components"][role]).is_dir(), role
    items_csv = (data / "items.csv").read_text().splitlines()
    pushed_images = list((serving / version / "images").glob("*.png"))
    assert len(pushed_images) == len(items_csv) - 1  # every catalog photo travels with the bundle (/items/{id}/image)
    assert manifest["data_hash"] and manifest["mlmd_ids"]["search_engine"] > 0
    metrics = manifest["metrics"]
    served = next(m for m in ("hybrid+ltr", "hybrid") if m in metrics)
    # the key proof, in `make test`: with the real encoders (MiniLM text, the frozen image backbone) the served text
    # path beats keyword search on the tiny catalog's judged EVAL queries by the blessing margin
    assert metrics[served]["ndcg@10"] >= metrics["bm25"]["ndcg@10"] + 0.05, (served, metrics[served], metrics["bm25"])
    calibration = json.loads((serving / version / manifest["components"]["index"] / "calibration.json").read_text())
    assert calibration["low_confidence_threshold"] is not None  # calibrated at index build, not left unset
    _check_engine_price_feature(serving / version / manifest["components"]["index"], store)
    _check_engine_fingerprints(serving / version / manifest["components"]["index"])
    _check_engine_rrf_tuning(serving / version / manifest["components"]["index"])

    fs = FeatureStore(repo_path=str(repo))
    item_id = json.loads((root / "EmbeddingGen").glob("embeddings/*/item_ids.json").__next__().read_text())[0]
    item = fs.get_online_features(["item_features:popularity", "item_features:category", "item_features:embedding"],
                                  [{"item_id": item_id}]).to_dict()
    image_dim = np.load(next((root / "EmbeddingGen").glob("embeddings/*/image.npy"))).shape[1]
    assert item["category"][0] and len(item["embedding"][0]) == 384 + image_dim  # [text; image]
    user_id = __import__("pandas").read_csv(data / "interactions.csv", dtype=str)["user_id"].iloc[0]
    user = fs.get_online_features(["user_features:recent_items", "user_features:n_events"],
                                  [{"user_id": user_id}]).to_dict()
    assert user["n_events"][0] and user["recent_items"][0]

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    found = mlflow.search_runs(experiment_names=["pixelmatch"], output_format="list")
    parent = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in found if r.data.tags.get("mlflow.parentRunId") == parent[0].info.run_id]
    assert parent and parent[0].data.metrics["pipeline_seconds"] > 0
    names = {r.info.run_name for r in children}
    assert {"training:image_backbone", "training:ranker", "training:two_tower", "evaluation"} <= names, names
    emissions = {k: v for r in children for k, v in r.data.metrics.items() if k.endswith("_emissions_kg")}
    assert emissions and all(v >= 0 for v in emissions.values()), emissions
    assert any(p.name == "emissions.csv" for p in root.rglob("emissions.csv"))

    t1 = time.time()
    assert run_pipeline(str(data), str(serving), pipeline_root=str(root), feature_repo=str(repo)) == EXIT_OK
    second = time.time() - t1
    runs, _ = _executions_by_node(root / "metadata.sqlite")
    # The evaluator (and so the pusher and publisher) rerun by design: the Resolver now hands it the first
    # run's blessing as the baseline. Everything that trains or builds is served from the cache.
    rerun = {"RetrievalEvaluator", "BundlePusher", "FeastPublisher"}
    assert all(states[-1] == "CACHED" for node, states in runs.items() if node in NODES - rerun), runs
    assert read_latest(serving) == version  # the same engine and ranker: no duplicate version pushed
    assert sorted(p.name for p in serving.iterdir()) == sorted([version, "LATEST"])
    print(f"first run {first:.1f}s, cached rerun {second:.1f}s")
    assert second < first / 3, (first, second)
    os.environ.pop("PIXELMATCH_MLFLOW_PARENT_RUN_ID", None)
