"""DataExampleGen logic: schema-typed tf.Examples and deterministic time splits."""
from __future__ import annotations

import json
from pathlib import Path

import tensorflow as tf

from components.example_gen import executor
from modules.data.data_io import read_cutoff


def _write(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "items.csv").write_text(
        "item_id,title,price,created_at\na,Red dress,10,100\nb,Blue lamp,cheap,300\nc,,5.5,50\n"
    )
    (d / "interactions.csv").write_text("user_id,item_id,event,ts\nu1,a,view,150\nu1,c,click,250\nu2,a,purchase,99\n")
    (d / "manifest.json").write_text(json.dumps({"cutoff_ts": 200}))
    (d / "queries.jsonl").write_text(json.dumps({"qid": "q1", "kind": "text", "text": "red", "image_path": "",
                                                 "relevance": {"a": 3}, "split": "eval"}) + "\n")


def test_types_follow_the_schema_and_bad_values_stay_visible(tmp_path: Path) -> None:
    _write(tmp_path)
    splits = executor.items_examples(tmp_path, read_cutoff(tmp_path))
    train = [tf.train.Example.FromString(r).features.feature for r in splits["train"]]
    assert [f["item_id"].bytes_list.value[0] for f in train] == [b"a", b"c"]
    assert train[0]["price"].float_list.value[0] == 10.0  # "10" is a FLOAT, not an inferred INT
    assert "title" not in train[1]  # empty cell left out: TFDV's presence rule sees it
    (new,) = [tf.train.Example.FromString(r).features.feature for r in splits["eval"]]
    assert new["price"].bytes_list.value[0] == b"cheap"  # unparseable number stays bytes -> type anomaly


def test_interactions_split_by_cutoff_and_queries_by_field(tmp_path: Path) -> None:
    _write(tmp_path)
    inter = executor.interactions_examples(tmp_path, 200)
    assert len(inter["train"]) == 2 and len(inter["eval"]) == 1
    queries = executor.queries_examples(tmp_path)
    assert len(queries["eval"]) == 1 and not queries["train"]
    counts = executor.write_splits(str(tmp_path / "out"), inter)
    assert counts == {"train": 2, "eval": 1}
    assert (tmp_path / "out" / "Split-train" / "data_tfrecord-00000-of-00001.gz").is_file()


def test_fingerprint_changes_with_the_data(tmp_path: Path) -> None:
    _write(tmp_path)
    first = executor.data_fingerprint(tmp_path)
    assert executor.data_fingerprint(tmp_path) == first
    (tmp_path / "items.csv").write_text((tmp_path / "items.csv").read_text() + "d,New,1,1\n")
    assert executor.data_fingerprint(tmp_path) != first
