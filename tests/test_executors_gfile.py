"""Executors on a non-local filesystem: DataExampleGen -> EmbeddingGen -> IndexBuilder run as TFX executes them
(the component's executor class, ``Do``), once with local paths and once with every URI on TensorFlow's in-memory
``ram://`` filesystem (the catalog too), as a Kubeflow pipeline root on ``gs://`` or ``s3://`` gives them. The
outputs must land under ``ram://`` and hold what the local run wrote (``components.common.local_dirs``)."""
from __future__ import annotations

import copy
import io
import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from executor_fixtures import make_artifact, run_executor

from components.common import copy_tree, is_local, local_dirs, read_examples
from modules.config import load_params

# outputs whose content legitimately differs between two runs (timings, energy, MLflow run ids)
VOLATILE_FILES = {"stats.json", "emissions.csv"}


def _run_three(root: str, data_dir: str, params: dict) -> dict[str, Any]:
    """ExampleGen, EmbeddingGen, IndexBuilder with every artifact under ``root``; returns the artifacts."""
    from tfx.types.standard_artifacts import Examples, Model

    from components.artifacts import DataReport, Embeddings
    from components.embedding_gen.component import EmbeddingGen
    from components.example_gen.component import DataExampleGen
    from components.index_builder.component import IndexBuilder

    arts = {name: make_artifact(Examples, f"{root}/{name}") for name in ("items", "interactions", "queries")}
    run_executor(DataExampleGen, {}, arts, {"data_dir": data_dir, "data_hash": "h"})
    arts["report"] = make_artifact(DataReport, f"{root}/report")
    arts["embeddings"] = make_artifact(Embeddings, f"{root}/embeddings")
    pj = json.dumps(params)
    run_executor(EmbeddingGen, {"data_report": arts["report"]}, {"embeddings": arts["embeddings"]},
        {"data_dir": data_dir, "data_hash": "h", "params_json": pj})
    arts["search_engine"] = make_artifact(Model, f"{root}/search_engine")
    run_executor(IndexBuilder, {"embeddings": arts["embeddings"], "queries": arts["queries"]},
        {"search_engine": arts["search_engine"]}, {"data_dir": data_dir, "params_json": pj})
    return arts


def _files(root: str) -> dict[str, bytes]:
    out = {}
    for d, _subdirs, files in tf.io.gfile.walk(root):
        for name in files:
            path = os.path.join(d, name)
            with tf.io.gfile.GFile(path, "rb") as f:
                out[path[len(root):].lstrip("/")] = f.read()
    return out


def test_local_dirs_is_a_no_op_for_paths_and_stages_uris(tmp_path: Path) -> None:
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "sub" / "a.txt").write_text("a")
    with local_dirs({"x": str(tmp_path / "in"), "none": None}, {"y": str(tmp_path / "out")}) as local:
        assert local == {"x": str(tmp_path / "in"), "none": None, "y": str(tmp_path / "out")}
    ram = f"ram://pm-{uuid.uuid4().hex}"
    assert copy_tree(str(tmp_path / "in"), f"{ram}/in") == 1 and not is_local(ram)
    with local_dirs({"x": f"{ram}/in"}, {"y": f"{ram}/out"}) as local:
        assert Path(local["x"], "sub", "a.txt").read_text() == "a"
        Path(local["y"], "deep").mkdir()
        Path(local["y"], "deep", "b.txt").write_text("b")
        staged = Path(local["x"]).parent.parent
    assert _files(f"{ram}/out") == {"deep/b.txt": b"b"} and not staged.exists()
    with pytest.raises(RuntimeError), local_dirs({}, {"z": f"{ram}/failed"}) as local:
        Path(local["z"], "c.txt").write_text("c")
        raise RuntimeError("the body failed")
    assert not tf.io.gfile.exists(f"{ram}/failed")  # a failed body publishes nothing
    with pytest.raises(ValueError, match="both input and output"):
        with local_dirs({"a": "x"}, {"a": "y"}):
            pass


def test_executors_read_and_write_ram_uris_like_local_paths(small_catalog: Path, tmp_path: Path) -> None:
    params = copy.deepcopy(load_params())
    params["encoders"]["image"] = {**params["encoders"]["image"], "kind": "color"}  # model-free: fast and exact
    ram = f"ram://pm-{uuid.uuid4().hex}"
    copy_tree(str(small_catalog), f"{ram}/data")
    local = _run_three(str(tmp_path / "root"), str(small_catalog), params)
    remote = _run_three(f"{ram}/root", f"{ram}/data", params)

    for name in ("items", "interactions", "queries"):
        assert remote[name].uri.startswith("ram://")
        for split in ("train", "eval"):
            assert read_examples(remote[name], split) == read_examples(local[name], split)
        assert remote[name].get_int_custom_property("num_train") == local[name].get_int_custom_property("num_train")
    for name in ("embeddings", "search_engine"):
        got, want = _files(remote[name].uri), _files(local[name].uri)
        assert set(got) == set(want) and len(got) > 5, name
        for rel, data in want.items():
            if rel.endswith(".npy"):
                assert np.array_equal(np.load(tf.io.gfile.GFile(f"{remote[name].uri}/{rel}", "rb")),
                                      np.load(f"{local[name].uri}/{rel}")), rel
            elif os.path.basename(rel) not in VOLATILE_FILES and not rel.endswith(".parquet"):
                assert got[rel] == data, rel
    engine = "Format-Serving/items.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(f"{local['search_engine'].uri}/{engine}"),
                                  pd.read_parquet(io.BytesIO(_files(remote["search_engine"].uri)[engine])))
    assert remote["embeddings"].get_int_custom_property("n_items") == local["embeddings"].get_int_custom_property("n_items")
