"""DATA_DIR readers: types, defaults, validation errors, text assembly, temporal split."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modules.data import data_io

HEADER = "item_id,title,description,category,brand,price,gender,image_path,created_at"


def _write(tmp: Path, name: str, text: str) -> Path:
    (tmp / name).write_text(text)
    return tmp


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from modules.config import load_params
    from modules.data.catalog import generate_catalog

    params = load_params()
    params["generate"]["workers"] = 1  # a 120-item catalog does not pay for a process pool
    params["generate"]["scales"]["tiny"] = {"n_items": 120, "n_users": 40, "n_interactions": 800,
                                            "n_text_queries": 50, "n_image_queries": 5, "n_composed_queries": 5}
    out = tmp_path_factory.mktemp("dio") / "data"
    generate_catalog("tiny", out, seed=7, params=params, progress=False)
    return out


def test_load_items_types_and_empty_text(tmp_path: Path) -> None:
    _write(tmp_path, "items.csv", HEADER + ",color\n"
           "00123,Blue Tee,,t-shirts,Basix,9.5,men,,1700000000,blue\n"
           "A-9,Lamp,Nice lamp,lamps,,0,unisex,images/x.png,1700000001,\n")
    items = data_io.load_items(tmp_path)
    assert items["item_id"].tolist() == ["00123", "A-9"]  # ids stay strings, leading zeros kept
    assert items["price"].dtype == np.float64 and items["created_at"].dtype == np.int64
    assert items.at[0, "description"] == "" and items.at[1, "brand"] == "" and items.at[1, "color"] == ""
    assert data_io.extra_attribute_columns(items) == ["color"]


@pytest.mark.parametrize(("rows", "message"), [
    ("1,T,D,c,b,abc,men,,1\n", "non-numeric value 'abc'"),
    ("1,T,D,c,b,-3,men,,1\n", "negative price"),
    ("1,T,D,c,b,3,men,,1\n1,T,D,c,b,3,men,,1\n", "duplicate item_id '1'"),
    ("1,T,D,c,b,3,men,,1.5\n", "must hold integers"),
    (",T,D,c,b,3,men,,1\n", "empty item_id"),
])
def test_load_items_rejects_bad_rows(tmp_path: Path, rows: str, message: str) -> None:
    _write(tmp_path, "items.csv", HEADER + "\n" + rows)
    with pytest.raises(ValueError, match=message):
        data_io.load_items(tmp_path)


def test_load_items_missing_file_or_columns(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="items file not found"):
        data_io.load_items(tmp_path)
    _write(tmp_path, "items.csv", "item_id,title\n1,x\n")
    with pytest.raises(ValueError, match="missing required columns .*'price'"):
        data_io.load_items(tmp_path)
    _write(tmp_path, "items.csv", "")
    with pytest.raises(ValueError, match="file is empty"):
        data_io.load_items(tmp_path)


def test_load_interactions(tmp_path: Path) -> None:
    empty = data_io.load_interactions(tmp_path)  # absent file -> empty frame
    assert list(empty.columns) == data_io.INTERACTION_COLUMNS and len(empty) == 0
    _write(tmp_path, "interactions.csv", "user_id,item_id,event,ts\n")
    header_only = data_io.load_interactions(tmp_path)
    assert len(header_only) == 0 and header_only["ts"].dtype == np.int64
    _write(tmp_path, "interactions.csv", "user_id,item_id,event,ts\n007,00123,click,1700000000\n")
    df = data_io.load_interactions(tmp_path)
    assert df.at[0, "user_id"] == "007" and df.at[0, "item_id"] == "00123" and df["ts"].dtype == np.int64
    _write(tmp_path, "interactions.csv", "user_id,item_id,event,ts\nu,i,like,1\n")
    with pytest.raises(ValueError, match="unknown event 'like'"):
        data_io.load_interactions(tmp_path)


def test_load_queries(tmp_path: Path) -> None:
    assert data_io.load_queries(tmp_path) == []
    lines = [{"qid": "a", "kind": "text", "text": "red dress", "relevance": {"1": 3}, "split": "train"},
             {"qid": "b", "kind": "image", "image_path": "images/queries/b.png", "relevance": {"2": 1}}]
    _write(tmp_path, "queries.jsonl", "\n".join(json.dumps(q) for q in lines) + "\n\n")
    qs = data_io.load_queries(tmp_path)
    assert [q["qid"] for q in qs] == ["a", "b"]
    assert qs[1]["text"] == "" and qs[1]["split"] == "eval" and qs[1]["cold"] is False
    assert qs[0]["image_path"] == "" and qs[0]["source"] == "judged"
    assert [q["qid"] for q in data_io.load_queries(tmp_path, split="train")] == ["a"]
    with pytest.raises(ValueError, match="split must be"):
        data_io.load_queries(tmp_path, split="test")


@pytest.mark.parametrize(("line", "message"), [
    ("{not json", ":1: invalid JSON"),
    ('["a"]', "expected a JSON object"),
    ('{"qid": "a", "kind": "text"}', "missing keys \\['relevance'\\]"),
    ('{"qid": "a", "kind": "audio", "relevance": {}}', "unknown kind 'audio'"),
    ('{"qid": "a", "kind": "text", "relevance": {"x": 7}}', "integer grade"),
])
def test_load_queries_rejects_bad_lines(tmp_path: Path, line: str, message: str) -> None:
    _write(tmp_path, "queries.jsonl", line + "\n")
    with pytest.raises(ValueError, match=message):
        data_io.load_queries(tmp_path)


def test_load_manifest_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        data_io.load_manifest(tmp_path)
    _write(tmp_path, "manifest.json", "{oops")
    with pytest.raises(ValueError, match="invalid JSON"):
        data_io.load_manifest(tmp_path)
    _write(tmp_path, "manifest.json", '{"source": "ingested"}')
    with pytest.raises(ValueError, match="cutoff_ts"):
        data_io.load_manifest(tmp_path)


def test_item_text_uses_public_columns_only() -> None:
    items = pd.DataFrame({"item_id": ["1"], "title": ["Aero Trainers"], "description": ["Light and fast."],
                          "category": ["sneakers"], "brand": ["Kinetix"], "price": [59.99], "gender": ["men"],
                          "image_path": ["images/1.png"], "created_at": [1700000000], "material": ["mesh"],
                          "style": ["sporty"], "pop_rank": [3]})
    (text,) = data_io.item_text(items)
    assert text == "Aero Trainers. Light and fast. sneakers Kinetix men mesh sporty"
    for hidden in ("images/1.png", "59.99", "1700000000", "3"):
        assert hidden not in text.split()


def test_split_interactions_and_new_items(generated: Path) -> None:
    manifest = data_io.load_manifest(generated)
    items = data_io.load_items(generated)
    inter = data_io.load_interactions(generated)
    train, test = data_io.split_interactions(inter, manifest["cutoff_ts"])
    assert len(train) + len(test) == len(inter) == 800
    assert (train["ts"] < manifest["cutoff_ts"]).all() and (test["ts"] >= manifest["cutoff_ts"]).all()
    new = data_io.new_item_ids(generated)
    assert len(new) == 12 and new == set(items.loc[items["created_at"] >= manifest["cutoff_ts"], "item_id"])
    (generated / "new_items.txt").rename(generated / "moved.txt")  # fallback: derived from created_at
    try:
        assert data_io.new_item_ids(generated, items) == new
    finally:
        (generated / "moved.txt").rename(generated / "new_items.txt")


def test_generated_catalog_round_trips(generated: Path) -> None:
    items = data_io.load_items(generated)
    texts = data_io.item_text(items)
    assert len(texts) == len(items) and all(texts)
    assert all(items.at[i, "material"] in texts[i] for i in range(len(items)))
    queries = data_io.load_queries(generated)
    assert {q["kind"] for q in queries} == {"text", "image", "composed"}
    truth = data_io.load_truth_items(generated)
    assert list(truth["item_id"]) == list(items["item_id"])
    assert "color" not in items.columns and "color" in truth.columns
    assert len(data_io.load_truth_users(generated)) == 40


def test_embedding_rows_are_reordered_to_the_catalog(tmp_path: Path) -> None:
    ids = ["b", "a", "c"]
    (tmp_path / data_io.EMB_IDS_FILE).write_text(json.dumps(ids))
    for name, dim in ((data_io.EMB_TEXT_FILE, 4), (data_io.EMB_IMAGE_FILE, 3), (data_io.EMB_COLOR_FILE, 2)):
        np.save(tmp_path / name, np.array([[ord(i)] * dim for i in ids], dtype=np.float32))
    text, image, color = data_io.load_embedding_rows(tmp_path, ["a", "b", "c"])
    assert text[:, 0].tolist() == [ord("a"), ord("b"), ord("c")] and image.shape == (3, 3) and color.shape == (3, 2)
    assert color[:, 1].tolist() == [ord("a"), ord("b"), ord("c")]
    with pytest.raises(ValueError, match=r"lack 1 item\(s\), e.g. \['zz'\]"):
        data_io.load_embedding_rows(tmp_path, ["a", "zz"])
