"""modules/data/delta_ingest.py: the serving delta log folded back into DATA_DIR (fast, no TFX run)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from components.data_check.rules import check_data_dir
from modules.data.delta_ingest import DeltaIngestError, apply_delta
from modules.data.delta_log import fold_delta, parse_delta_lines, read_delta_log
from serving.delta import DeltaLog

CUTOFF = 1_700_000_000
TS_NEW = CUTOFF + 5_000


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    """A tiny DATA_DIR in the generated format: 3 items (one extra column), interactions, queries, manifest."""
    d = tmp_path / "data"
    _write(d / "items.csv",
           "item_id,title,description,category,brand,price,gender,image_path,created_at,material\n"
           "a1,Red Wool Coat,Warm coat.,jackets,Acme,120.0,women,images/a1.png,1690000000,wool\n"
           "a2,Blue Denim Jeans,Straight leg.,jeans,Acme,60.5,men,images/a2.png,1690000100,denim\n"
           "a3,Black Leather Boots,Ankle boots.,boots,Stride,89.99,unisex,,1690000200,leather\n")
    (d / "images").mkdir()
    Image.new("RGB", (8, 8), "red").save(d / "images" / "a1.png")
    Image.new("RGB", (8, 8), "blue").save(d / "images" / "a2.png")
    _write(d / "interactions.csv",
           "user_id,item_id,event,ts\n"
           "u1,a1,view,1695000000\n"
           "u1,a2,purchase,1695000100\n"
           "u2,a2,click,1701000000\n"
           "u2,a3,view,1695000200\n")
    queries = [
        {"qid": "q1", "kind": "text", "text": "denim", "image_path": "", "relevance": {"a2": 3}, "split": "eval",
         "cold": False, "source": "judged"},
        {"qid": "q2", "kind": "text", "text": "warm things", "image_path": "", "relevance": {"a1": 3, "a2": 1},
         "split": "train", "cold": False, "source": "judged"},
        {"qid": "q3", "kind": "text", "text": "boots", "image_path": "", "relevance": {"a3": 2}, "split": "eval",
         "cold": False, "source": "judged"},
    ]
    _write(d / "queries.jsonl", "".join(json.dumps(q) + "\n" for q in queries))
    _write(d / "new_items.txt", "")
    manifest = {"source": "generated", "seed": 42, "cutoff_ts": CUTOFF, "new_item_ids_file": "new_items.txt",
                "counts": {"items": 3, "interactions": 4, "interactions_train": 3, "new_items": 0, "queries": 3,
                           "queries_eval": 2, "images": 2},
                "checksums": {"items.csv": "stale", "interactions.csv": "stale"}}
    _write(d / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return d


@pytest.fixture()
def serving_dir(tmp_path: Path) -> Path:
    return tmp_path / "serving"


def _items(data_dir: Path) -> pd.DataFrame:
    return pd.read_csv(data_dir / "items.csv", dtype=str, keep_default_na=False).set_index("item_id")


def _snapshot(d: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(d)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(d.rglob("*")) if p.is_file()}


def _add(item: dict, ts: float, image: Image.Image | None = None, serving_dir: Path | None = None) -> dict:
    rec = {"op": "add", "ts": ts, "item": item, "image_file": None}
    if image is not None:
        rec["image_file"] = DeltaLog(serving_dir).store_image(image)
    return rec


def test_upsert_new_item_with_image(data_dir: Path, serving_dir: Path) -> None:
    log = DeltaLog(serving_dir)       # written exactly as the server writes it
    log.append([_add({"item_id": "live-1", "title": "Zorblax  Velvet Cape", "description": "Soft.", "category": None,
                      "price": None, "gender": None, "brand": None,
                      "attributes": {"material": "velvet", "color": "green"}},
                     TS_NEW, Image.new("RGB", (16, 16), "green"), serving_dir)])

    summary = apply_delta(data_dir, serving_dir)

    assert (summary["records"], summary["inserted"], summary["updated"], summary["images_copied"]) == (1, 1, 0, 1)
    row = _items(data_dir).loc["live-1"]
    assert row["title"] == "Zorblax Velvet Cape"
    assert (row["category"], row["price"], row["gender"], row["brand"]) == ("other", "0.0", "unisex", "")
    assert row["created_at"] == str(TS_NEW)
    assert row["material"] == "velvet"                       # an existing column takes the attribute
    assert row["description"] == "Soft. color: green"        # any other attribute is folded into the text
    assert row["image_path"] == "images/delta/live-1.png"
    stored = serving_dir / log.read()[0]["image_file"]
    assert (data_dir / row["image_path"]).read_bytes() == stored.read_bytes()
    assert (data_dir / "new_items.txt").read_text() == "live-1\n"          # created after the cut-off: a new SKU
    manifest = json.loads((data_dir / "manifest.json").read_text())
    assert manifest["counts"]["items"] == 4 and manifest["counts"]["images"] == 3
    assert manifest["counts"]["new_items"] == 1
    applied = manifest["delta_applied"]
    assert applied["records"] == 1 and applied["lines"] == 1
    assert applied["bytes"] == (serving_dir / "delta.jsonl").stat().st_size
    assert len(manifest["checksums"]["items.csv"]) == 64
    assert check_data_dir(data_dir)["n_items"] == 4


def test_update_existing_item_keeps_created_at_and_interactions(data_dir: Path, serving_dir: Path) -> None:
    DeltaLog(serving_dir).append([
        _add({"item_id": "a2", "title": "Blue Denim Jeans v1", "category": "jeans", "price": 55.0}, TS_NEW),
        _add({"item_id": "a2", "title": "Indigo Denim Jeans", "category": "jeans", "price": 59.0, "gender": "men"},
             TS_NEW + 10),
    ])

    summary = apply_delta(data_dir, serving_dir)

    assert (summary["inserted"], summary["updated"], summary["deleted"]) == (0, 1, 0)
    items = _items(data_dir)
    assert len(items) == 3 and list(items.index) == ["a1", "a2", "a3"]          # replaced in place
    row = items.loc["a2"]
    assert (row["title"], row["price"], row["gender"]) == ("Indigo Denim Jeans", "59.0", "men")
    assert row["created_at"] == "1690000100"                 # the product is not new: its first-seen time stays
    assert row["image_path"] == ""                           # replace semantics, as the live server shows it
    assert (data_dir / "new_items.txt").read_text() == ""
    assert len(pd.read_csv(data_dir / "interactions.csv")) == 4
    check_data_dir(data_dir)


def test_delete_removes_item_interactions_and_relevance(data_dir: Path, serving_dir: Path) -> None:
    DeltaLog(serving_dir).append([{"op": "delete", "ts": TS_NEW, "item_id": "a2"},
                                  {"op": "delete", "ts": TS_NEW, "item_id": "never-existed"}])

    summary = apply_delta(data_dir, serving_dir)

    assert summary["deleted"] == 1 and summary["interactions_removed"] == 2
    assert "a2" not in _items(data_dir).index
    inter = pd.read_csv(data_dir / "interactions.csv", dtype=str)
    assert "a2" not in set(inter["item_id"]) and len(inter) == 2
    queries = [json.loads(line) for line in (data_dir / "queries.jsonl").read_text().splitlines()]
    assert [q["qid"] for q in queries] == ["q2", "q3"]       # q1 only had a2: dropped
    assert queries[0]["relevance"] == {"a1": 3}
    assert summary["queries_changed"] == 1 and summary["queries_dropped"] == 1
    counts = json.loads((data_dir / "manifest.json").read_text())["counts"]
    assert (counts["items"], counts["interactions"], counts["interactions_train"], counts["queries"]) == (2, 2, 2, 2)
    assert check_data_dir(data_dir) == {"n_items": 2, "n_interactions": 2}


def test_delete_then_readd_in_one_log_is_an_upsert(data_dir: Path, serving_dir: Path) -> None:
    DeltaLog(serving_dir).append([{"op": "delete", "ts": TS_NEW, "item_id": "a1"},
                                  _add({"item_id": "a1", "title": "Red Wool Coat II", "category": "jackets"},
                                       TS_NEW + 1)])
    summary = apply_delta(data_dir, serving_dir)
    assert summary["deleted"] == 0 and summary["interactions_removed"] == 0
    assert _items(data_dir).loc["a1", "title"] == "Red Wool Coat II"
    check_data_dir(data_dir)


def test_applying_twice_equals_applying_once(data_dir: Path, serving_dir: Path) -> None:
    DeltaLog(serving_dir).append([
        _add({"item_id": "live-2", "title": "Mint Sneakers", "category": "sneakers", "price": 70.0}, TS_NEW,
             Image.new("RGB", (12, 12), "white"), serving_dir),
        _add({"item_id": "a1", "title": "Red Wool Coat (restock)", "category": "jackets"}, TS_NEW),
        {"op": "delete", "ts": TS_NEW, "item_id": "a3"},
    ])
    first = apply_delta(data_dir, serving_dir)
    once = _snapshot(data_dir)

    second = apply_delta(data_dir, serving_dir)

    assert first["files_written"] and second["files_written"] == []
    assert second["interactions_removed"] == 0 and second["images_copied"] == 0
    assert _snapshot(data_dir) == once          # bytes AND mtimes: the run's data fingerprint is unchanged
    assert (serving_dir / "delta.jsonl").is_file()   # the log is kept (the server replays it harmlessly)
    check_data_dir(data_dir)


def test_malformed_lines_are_reported_and_skipped(data_dir: Path, serving_dir: Path) -> None:
    serving_dir.mkdir()
    bad_image = serving_dir / "delta_images" / "broken.png"
    bad_image.parent.mkdir()
    bad_image.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (serving_dir / "outside.png").write_bytes(bad_image.read_bytes())
    good = {"op": "add", "ts": TS_NEW, "item": {"item_id": "ok-1", "title": "Plain Tee", "category": "t-shirts"}}
    lines = [
        "this is not json",
        json.dumps([1, 2]),
        json.dumps({"op": "upsert", "ts": TS_NEW, "item_id": "a1"}),
        json.dumps({"op": "delete", "item_id": "a1"}),                                   # no ts
        json.dumps({"op": "delete", "ts": TS_NEW, "item_id": "../etc/passwd"}),
        json.dumps({"op": "add", "ts": TS_NEW, "item": {"item_id": "x1", "title": "   "}}),
        json.dumps({"op": "add", "ts": TS_NEW, "item": {"item_id": "x2", "title": "T", "price": -3}}),
        json.dumps({"op": "add", "ts": TS_NEW, "item": {"item_id": "x3", "title": "T", "attributes": {"k": 1}}}),
        json.dumps({"op": "add", "ts": float("nan"), "item": {"item_id": "x4", "title": "T"}}),
        json.dumps(good),
        json.dumps({**good, "item": {**good["item"], "item_id": "ok-2"}, "image_file": "../outside.png"}),
        json.dumps({**good, "item": {**good["item"], "item_id": "ok-3"}, "image_file": "delta_images/broken.png"}),
    ]
    raw = ("\n".join(lines) + "\n").encode() + b'{"op": "delete", "ts": 1, "item_id": "a1"'   # torn tail
    (serving_dir / "delta.jsonl").write_bytes(raw)

    summary = apply_delta(data_dir, serving_dir)

    assert summary["records"] == 3 and summary["skipped"] == 9
    assert summary["problems_total"] == 9 + 1 + 2            # lines, torn tail, two unusable images
    text = "\n".join(summary["problems"])
    for expected in ("line 1: not JSON", "line 3: op must be", "line 4: ts must be", "line 5: delete needs",
                     "title must be", "price must be", "attributes must", "outside delta_images", "does not decode",
                     "unterminated"):
        assert expected in text
    items = _items(data_dir)
    assert {"ok-1", "ok-2", "ok-3"} <= set(items.index) and "a1" in items.index   # the torn delete was not applied
    assert items.loc["ok-2", "image_path"] == "" and items.loc["ok-3", "image_path"] == ""
    assert json.loads((data_dir / "manifest.json").read_text())["delta_applied"]["bytes"] == raw.rfind(b"\n") + 1
    check_data_dir(data_dir)


def test_server_reads_the_log_through_the_shared_parser(serving_dir: Path) -> None:
    log = DeltaLog(serving_dir)
    log.append([_add({"item_id": "s1", "title": "A"}, 1.0), {"op": "delete", "ts": 2.0, "item_id": "s0"}])
    with log.path.open("a") as f:
        f.write('{"op": "add", "ts": 3, "item": {"item_id": "s2"}}\n')        # no title: skipped on both sides
    parsed = read_delta_log(log.path)
    assert log.read() == parsed.records and len(parsed.records) == 2 and len(parsed.problems) == 1
    state = log.state()
    assert list(state.added) == ["s1"] and state.deleted == {"s0"}
    assert fold_delta(parse_delta_lines(log.path.read_text().splitlines()).records) == state


def test_unusable_data_dir_is_a_clear_error(tmp_path: Path, serving_dir: Path) -> None:
    DeltaLog(serving_dir).append([_add({"item_id": "z", "title": "Z"}, 1.0)])
    with pytest.raises(DeltaIngestError, match="items.csv"):
        apply_delta(tmp_path / "nowhere", serving_dir)
    assert apply_delta(tmp_path / "nowhere", tmp_path / "no-serving-dir")["records"] == 0   # no log: a no-op


def test_run_pipeline_applies_the_delta_before_the_preflight_check(data_dir: Path, serving_dir: Path,
                                                                  tmp_path: Path) -> None:
    from pipelines.local_runner import EXIT_BAD_DATA, run_pipeline

    DeltaLog(serving_dir).append([_add({"item_id": "live-9", "title": "Wired Lamp", "category": "lamps"}, TS_NEW)])
    with (data_dir / "queries.jsonl").open("a") as f:          # a pre-existing problem stops the run before TFX
        f.write(json.dumps({"qid": "bad", "kind": "text", "text": "x", "image_path": "", "relevance": {"a1": 1},
                            "split": "holdout"}) + "\n")
    code = run_pipeline(str(data_dir), str(serving_dir), pipeline_root=str(tmp_path / "root"))
    assert code == EXIT_BAD_DATA
    assert "live-9" in _items(data_dir).index
    assert not (tmp_path / "root").exists()
