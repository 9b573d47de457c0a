"""``encoders.image.kind: clip`` through the pipeline and serving: a tiny random CLIP saved to disk, the small
catalog through the real executors (DataExampleGen -> EmbeddingGen -> IndexBuilder -> RankerTrainer ->
BundlePusher), then the pushed bundle loaded by the server's own loader, answering /search/text and
/search/image. The image space must be CLIP's (its dimension, its vectors for the catalog photos)."""
from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from clip_fixtures import tiny_clip_dir
from executor_fixtures import make_artifact, run_executor
from fastapi.testclient import TestClient

from modules.config import load_params


def _pipeline(data: Path, root: Path, serving: Path, params: dict) -> dict[str, Any]:
    """The executors the pipeline chains for search, in order, on ``data``; pushes into ``serving``."""
    from tfx.types.standard_artifacts import Examples, Model, ModelBlessing, PushedModel, TransformGraph

    from components.artifacts import DataReport, Embeddings, RetrievalMetrics
    from components.bundle_pusher.component import BundlePusher
    from components.embedding_gen.component import EmbeddingGen
    from components.example_gen.component import DataExampleGen
    from components.index_builder.component import IndexBuilder
    from components.ranker_trainer.component import RankerTrainer

    a = {name: make_artifact(Examples, str(root / name)) for name in ("items", "interactions", "queries")}
    run_executor(DataExampleGen, {}, a, {"data_dir": str(data), "data_hash": "clip"})
    pj, common = json.dumps(params), {"data_dir": str(data)}
    for name, kind in (("report", DataReport), ("embeddings", Embeddings), ("search_engine", Model), ("ranker", Model),
                       ("transform", TransformGraph), ("metrics", RetrievalMetrics), ("blessing", ModelBlessing),
                       ("pushed", PushedModel)):
        a[name] = make_artifact(kind, str(root / name))
    run_executor(EmbeddingGen, {"data_report": a["report"]}, {"embeddings": a["embeddings"]},
                 {**common, "data_hash": "clip", "params_json": pj})
    run_executor(IndexBuilder, {"embeddings": a["embeddings"], "queries": a["queries"]},
                 {"search_engine": a["search_engine"]}, {**common, "params_json": pj})
    run_executor(RankerTrainer, {"search_engine": a["search_engine"], "queries": a["queries"]},
                 {"ranker": a["ranker"]}, {**common, "params_json": pj})
    # the blessing is RetrievalEvaluator's decision (tests/test_blessing*.py); here it is given, so the push runs
    a["blessing"].set_int_custom_property("blessed", 1)
    a["blessing"].set_string_custom_property("reasons", "given by the test")
    (root / "metrics" / "metrics.json").write_text("{}")
    run_executor(BundlePusher, {"search_engine": a["search_engine"], "ranker": a["ranker"],
                                "embeddings": a["embeddings"], "transform_graph": a["transform"],
                                "blessing": a["blessing"], "metrics": a["metrics"]}, {"pushed_model": a["pushed"]},
                 {**common, "serving_dir": str(serving), "data_hash": "clip", "version": "clip1", "params_json": pj})
    return a


@pytest.mark.integration
def test_clip_runs_through_the_pipeline_and_serving(small_catalog: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from modules.encoders.clip import ClipEncoder
    from modules.encoders.image_space import load_image_encoder
    from serving.app import create_app

    clip_dir = tiny_clip_dir(tmp_path)
    params = copy.deepcopy(load_params())
    params["encoders"]["image"] = {**params["encoders"]["image"], "kind": "clip", "clip_model": str(clip_dir)}
    params["recommend"]["hybrid"]["collaborative"] = "als"  # no two-tower in this chain (TwoTowerTrainer not run)
    serving = tmp_path / "serving"
    a = _pipeline(small_catalog, tmp_path / "root", serving, params)

    stats = json.loads((tmp_path / "root" / "embeddings" / "stats.json").read_text())
    assert stats["image_kind"] == "clip" and stats["image_dim"] == 16
    image = np.load(tmp_path / "root" / "embeddings" / "image.npy")
    items = pd.read_csv(small_catalog / "items.csv", dtype=str, keep_default_na=False)
    from PIL import Image

    photo_path = small_catalog / items.loc[3, "image_path"]
    clip = ClipEncoder(clip_dir)
    assert np.allclose(image[3], clip.encode_images([Image.open(photo_path).convert("RGB")])[0], atol=1e-5)
    assert load_image_encoder(tmp_path / "root" / "embeddings" / "image_tower", params).name == "clip"
    assert a["pushed"].get_int_custom_property("pushed") == 1 and (serving / "LATEST").read_text().strip() == "clip1"

    own_copy = list((serving / "clip1").rglob("clip_model"))
    assert len(own_copy) == 1 and (own_copy[0] / "config.json").is_file()   # the bundle carries the weights
    shutil.rmtree(clip_dir)              # so serving needs nothing outside the bundle
    monkeypatch.setenv("PIXELMATCH_FEATURE_REPO", str(tmp_path / "no_feature_repo"))  # no online store here
    with TestClient(create_app(serving, params, watch_interval_s=0)) as c:   # the default loader
        assert c.get("/ready").json()["version"] == "clip1"
        assert isinstance(c.app.state.manager.bundle.engine.image_encoder, ClipEncoder)
        title, iid = items.loc[3, "title"], items.loc[3, "item_id"]
        text = c.post("/search/text", json={"query": title, "top_k": 5})
        assert text.status_code == 200 and iid in [h["item_id"] for h in text.json()["results"]]
        by_photo = c.post("/search/image", files={"image": ("q.png", photo_path.read_bytes(), "image/png")},
                          data={"top_k": "5"})
        assert by_photo.status_code == 200
        assert iid in [h["item_id"] for h in by_photo.json()["results"]]  # its own photo, CLIP-embedded again
