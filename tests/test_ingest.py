"""Bring-your-own-catalog ingest (modules/data/ingest.py, modules/data/selfsup.py): fast tests, tmp dirs only.

The fashion sample is read in place from ../shared/datasets/fashion-sample/ and never copied into the repo.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modules.config import load_params, shared_dir
from modules.data.ingest import CORE_COLUMNS, IngestError, ingest_catalog, normalise_gender, parse_price
from modules.data.selfsup import make_selfsupervised_queries, tokenize

FASHION = shared_dir() / "datasets" / "fashion-sample"
FASHION_MAP = {"item_id": "id", "category": "articleType", "color": "baseColour"}


def _fashion_head(tmp_path: Path, n_rows: int) -> Path:
    """The first n_rows of the fashion sample's catalog.csv (the photos stay where they are)."""
    src = FASHION / "catalog.csv"
    lines = src.read_text(encoding="utf-8").splitlines(keepends=True)[: n_rows + 1]
    out = tmp_path / "catalog.csv"
    out.write_text("".join(lines), encoding="utf-8")
    return out


def _read_items(data_dir: Path) -> list[dict[str, str]]:
    with (data_dir / "items.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _read_queries(data_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (data_dir / "queries.jsonl").read_text(encoding="utf-8").splitlines()]


def _photo(path: Path, color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (64, 48)) -> Path:
    Image.new("RGB", size, color).save(path)
    return path


@pytest.fixture(scope="module")
def fashion300(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("fashion300")
    report = ingest_catalog(_fashion_head(tmp, 300), str(FASHION / "images"), tmp / "data", mapping=FASHION_MAP,
                            seed=42, params=load_params(), progress=False)
    return tmp / "data", report


def test_fashion_sample_ingests_cleanly(fashion300: tuple[Path, dict]) -> None:
    data, report = fashion300
    c = report["counts"]
    assert (c["rows_read"], c["items"], c["rejected"], c["with_image"], c["text_only"]) == (300, 300, 0, 300, 0)
    assert report["problems"] == {}
    items = _read_items(data)
    assert list(items[0])[: len(CORE_COLUMNS)] == CORE_COLUMNS
    assert {"color", "season", "usage", "master_category", "sub_category", "year"} <= set(items[0])
    first = items[0]
    assert first["item_id"] == "10000" and first["category"] == "Skirts" and first["color"] == "White"
    assert {r["gender"] for r in items} <= {"men", "women", "unisex"}
    assert all(float(r["price"]) == 0.0 for r in items)  # the sample has no price column
    for r in items[:20]:
        with Image.open(data / r["image_path"]) as img:
            assert img.format == "JPEG" and img.mode == "RGB" and max(img.size) <= 512

    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["source"] == "ingested" and manifest["seed"] == 42
    assert all(int(r["created_at"]) < manifest["cutoff_ts"] for r in items)  # every item counts as "old"
    assert manifest["counts"]["items"] == 300
    assert set(manifest["checksums"]) >= {"items.csv", "interactions.csv", "queries.jsonl", "images"}
    assert (data / "interactions.csv").read_text().strip() == "user_id,item_id,event,ts"
    assert json.loads((data / "ingest_report.json").read_text())["counts"] == c


def test_selfsupervised_queries_are_known_item_and_split_by_query(fashion300: tuple[Path, dict]) -> None:
    data, _ = fashion300
    queries = _read_queries(data)
    items = {r["item_id"]: r for r in _read_items(data)}
    assert {q["source"] for q in queries} == {"self_supervised"}
    assert {q["kind"] for q in queries} == {"text", "image"}
    assert len({q["qid"] for q in queries}) == len(queries)
    for kind in ("text", "image"):
        splits = [q["split"] for q in queries if q["kind"] == kind]
        assert set(splits) == {"train", "eval"}
        assert abs(splits.count("eval") / len(splits) - 0.5) < 0.05
    for q in queries:
        target = [i for i, g in q["relevance"].items() if g == 3]
        assert len(target) == 1 and target[0] in items and q["cold"] is False
        if q["kind"] == "text":
            words = q["text"].split()
            assert 1 <= len(words) <= 3 and set(words) <= set(tokenize(items[target[0]]["title"]))
        else:
            assert q["text"] == "" and q["image_path"].startswith("images/queries/")
            with Image.open(data / q["image_path"]) as img:
                assert img.mode == "RGB"


def test_ingest_is_deterministic(tmp_path: Path, fashion300: tuple[Path, dict]) -> None:
    data, _ = fashion300
    ingest_catalog(_fashion_head(tmp_path, 300), str(FASHION / "images"), tmp_path / "again", mapping=FASHION_MAP,
                   seed=42, params=load_params(), progress=False)
    a = json.loads((data / "manifest.json").read_text())["checksums"]
    b = json.loads((tmp_path / "again" / "manifest.json").read_text())["checksums"]
    assert a == b


def test_bad_rows_are_reported_not_fatal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    imgs = tmp_path / "photos"
    imgs.mkdir()
    for i in ("a1", "a2", "a3", "a5", "a6", "a8"):
        _photo(imgs / f"{i}.jpg")
    (imgs / "a4.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")  # broken image
    Image.new("RGB", (30, 30), (10, 200, 10)).save(imgs / "a7.webp")  # .webp is found too
    rows = [
        b"item_id,title,price,brand,colour",
        b"a1,Red Linen Shirt,19.99,Acme,red",
        b"a2,Blue Jeans,\"$1,299.00\",Acme,blue",
        b"a1,Duplicate Of A1,5,Acme,red",            # duplicate id -> rejected
        b"a3,,12,Acme,green",                        # empty title -> rejected
        b"a4,Broken Photo Jacket,30,Acme,black",     # corrupt image -> text-only, flagged
        b"a5,Cheap Hat,abc,Acme,white",              # unparseable price -> rejected
        b"a6,Caf\xe9 Latte Mug,8,Acme,brown",        # latin-1 byte -> replaced, flagged
        b"a7,Green Scarf,,Acme,green",               # empty price -> 0.0, flagged
        b"a8,Too,Many,Fields,Here,Really",           # malformed -> rejected
        b"a9,No Photo Sneakers,40,Acme,white",       # missing image -> text-only, flagged
        b"a10,Negative Socks,-3,Acme,grey",          # negative price -> rejected
    ]
    catalog = tmp_path / "bad.csv"
    catalog.write_bytes(b"\n".join(rows) + b"\n")
    report = ingest_catalog(catalog, str(imgs), tmp_path / "data", seed=1, params=load_params(), progress=True)

    items = {r["item_id"]: r for r in _read_items(tmp_path / "data")}
    assert sorted(items) == ["a1", "a2", "a4", "a6", "a7", "a9"]
    assert items["a1"]["title"] == "Red Linen Shirt" and items["a1"]["color"] == "red"  # `colour` -> color
    assert float(items["a2"]["price"]) == 1299.0 and float(items["a7"]["price"]) == 0.0
    assert items["a4"]["image_path"] == "" and items["a9"]["image_path"] == ""
    assert items["a7"]["image_path"] == "images/a7.jpg"
    assert "\ufffd" in items["a6"]["title"]
    problems = report["problems"]
    assert problems["duplicate_id"] == 1 and problems["empty_title"] == 1 and problems["bad_price"] == 2
    assert problems["bad_image"] == 1 and problems["missing_image"] == 1 and problems["malformed_row"] == 1
    assert problems["missing_price"] == 1 and problems["encoding"] >= 2  # the file-level flag + the a6 row
    assert report["counts"]["rejected"] == 5 and report["counts"]["text_only"] == 2
    assert {r["category"] for r in items.values()} == {"other"}  # no category column: the default fills it
    by_id = {(r["item_id"], r["problem"]): r for r in report["rows"]}
    assert by_id[("a4", "bad_image")]["action"] == "text_only" and "a4.jpg" in by_id[("a4", "bad_image")]["reason"]
    assert by_id[("a1", "duplicate_id")]["line"] == 4
    on_disk = json.loads((tmp_path / "data" / "ingest_report.json").read_text())
    assert on_disk["problems"] == problems
    out = capsys.readouterr().out
    assert "ingested 6 of 11 rows" in out and "duplicate_id=1" in out and "ingest_report.json" in out


def test_image_modes_and_sizes_are_normalised(tmp_path: Path) -> None:
    imgs = tmp_path / "photos"
    imgs.mkdir()
    rgba = Image.new("RGBA", (40, 40), (0, 0, 0, 0))  # fully transparent -> white, not black
    rgba.save(imgs / "rgba.png")
    Image.new("L", (50, 30), 128).save(imgs / "gray.png")
    Image.new("CMYK", (20, 20), (0, 255, 255, 0)).save(imgs / "cmyk.jpg")
    pal = Image.new("P", (16, 16))
    pal.putpalette([0, 0, 255] * 256)
    pal.save(imgs / "palette.png")
    Image.new("RGB", (2000, 1000), (10, 20, 30)).save(imgs / "big.jpeg")
    Image.new("I;16", (8, 8)).save(imgs / "deep.png")
    ids = ["rgba", "gray", "cmyk", "palette", "big", "deep"]
    catalog = tmp_path / "c.csv"
    catalog.write_text("id,title\n" + "".join(f"{i},Item {i}\n" for i in ids), encoding="utf-8")
    report = ingest_catalog(catalog, str(imgs), tmp_path / "data", params=load_params(), progress=False)
    assert report["counts"]["with_image"] == len(ids) and report["problems"] == {}
    for i in ids:
        with Image.open(tmp_path / "data" / "images" / f"{i}.jpg") as img:
            assert img.format == "JPEG" and img.mode == "RGB" and max(img.size) <= 512
            arr = np.asarray(img, dtype=np.float32)
        if i == "rgba":
            assert arr.mean() > 240
        if i == "cmyk":
            assert arr[..., 0].mean() > 200 and arr[..., 1].mean() < 60  # cyan-free magenta+yellow = red
        if i == "big":
            assert img.size == (512, 256)


def test_image_path_column_relative_to_csv(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    (shop / "pics" / "sub").mkdir(parents=True)
    _photo(shop / "pics" / "one.png")
    _photo(shop / "pics" / "sub" / "two.webp", color=(0, 0, 200))
    (shop / "catalog.csv").write_text(
        "item_id,title,image_path,category\n"
        "p:1,Lamp,pics/one.png,home\n"
        "P.2,Chair,pics/sub/two.webp,home\n"
        "p3,Table,pics/missing.jpg,home\n"
        "p4,Rug,,home\n"
        "p 5,Sofa,,home\n"
        "p/6,=HYPERLINK(\"x\"),,home\n"
        "p7,=HYPERLINK(\"x\"),,@home\n",
        encoding="utf-8",
    )
    report = ingest_catalog(shop / "catalog.csv", None, tmp_path / "data", params=load_params(), progress=False)
    assert report["image_mode"] == "image_path_column"
    items = {r["item_id"]: r for r in _read_items(tmp_path / "data")}
    assert set(items) == {"p:1", "P.2", "p3", "p4", "p7"}  # "p 5" and "p/6" break the one id rule
    assert items["p4"]["category"] == "home" and float(items["p4"]["price"]) == 0.0
    assert items["p7"]["title"] == "'=HYPERLINK(\"x\")" and items["p7"]["category"] == "'@home"  # no formulas
    assert {r["item_id"] for r in report["rows"] if r["problem"] == "bad_id"} == {"p 5", "p/6"}
    for i in ("p:1", "P.2"):  # odd ids get safe, unique file names inside images/
        rel = items[i]["image_path"]
        assert rel.startswith("images/") and "/" not in rel[len("images/"):] and (tmp_path / "data" / rel).is_file()
    assert items["p3"]["image_path"] == "" and items["p4"]["image_path"] == ""
    assert report["problems"] == {"missing_image": 3, "bad_id": 2}
    reasons = {r["item_id"]: r["reason"] for r in report["rows"]}
    assert "pics/missing.jpg" in reasons["p3"] and "empty image_path" in reasons["p4"]


def test_unusable_catalogs_raise_ingest_error(tmp_path: Path) -> None:
    params = load_params()
    bad = tmp_path / "bad.csv"
    bad.write_text("id,title,price\n1,,3\n1,,4\n2,Shoe,abc\n", encoding="utf-8")
    with pytest.raises(IngestError, match="no usable rows"):
        ingest_catalog(bad, None, tmp_path / "o1", params=params, progress=False)
    no_title = tmp_path / "no_title.csv"
    no_title.write_text("id,name\n1,Shoe\n", encoding="utf-8")
    with pytest.raises(IngestError, match="title"):
        ingest_catalog(no_title, None, tmp_path / "o2", params=params, progress=False)
    # ... unless --map names it
    report = ingest_catalog(no_title, None, tmp_path / "o3", mapping={"title": "name"}, params=params, progress=False)
    assert report["counts"]["items"] == 1
    with pytest.raises(IngestError, match="not in the CSV header"):
        ingest_catalog(no_title, None, tmp_path / "o4", mapping={"title": "nmae"}, params=params, progress=False)
    with pytest.raises(IngestError, match="not found"):
        ingest_catalog(tmp_path / "nope.csv", None, tmp_path / "o5", params=params, progress=False)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(IngestError, match="empty"):
        ingest_catalog(empty, None, tmp_path / "o6", params=params, progress=False)
    with pytest.raises(IngestError, match="not a directory"):
        ingest_catalog(no_title, str(tmp_path / "no_such_dir"), tmp_path / "o7", mapping={"title": "name"},
                       params=params, progress=False)


def test_output_loads_like_a_generated_catalog(tmp_path: Path, fashion300: tuple[Path, dict]) -> None:
    from modules.data.catalog.generate import generate_catalog
    from modules.data.data_io import item_text, load_interactions, load_items, load_queries, new_item_ids

    data, _ = fashion300
    items = load_items(data)
    assert len(items) == 300 and items["item_id"].tolist()[:2] == ["10000", "10001"]
    assert len(load_interactions(data)) == 0
    queries = load_queries(data)
    assert len(queries) == len(_read_queries(data))
    texts = item_text(items)
    assert "Skirts" in texts[0] and "White" in texts[0]  # attribute columns are used as text

    generate_catalog("tiny", tmp_path / "gen", seed=42, params=load_params())
    generated = load_items(tmp_path / "gen")
    n_core = len(CORE_COLUMNS)
    assert list(items.columns)[:n_core] == list(generated.columns)[:n_core] == CORE_COLUMNS
    assert items["price"].dtype == generated["price"].dtype and items["created_at"].dtype == generated["created_at"].dtype
    gen_manifest = json.loads((tmp_path / "gen" / "manifest.json").read_text())
    ing_manifest = json.loads((data / "manifest.json").read_text())
    assert set(gen_manifest["counts"]) - set(ing_manifest["counts"]) <= {"street_photos"}
    assert new_item_ids(data) == set()

    # re-ingesting into a generated DATA_DIR leaves no synthetic hidden truth behind
    assert (tmp_path / "gen" / "truth_items.csv").is_file()
    ingest_catalog(_fashion_head(tmp_path, 20), str(FASHION / "images"), tmp_path / "gen", mapping=FASHION_MAP,
                   params=load_params(), progress=False)
    assert not (tmp_path / "gen" / "truth_items.csv").exists() and len(load_items(tmp_path / "gen")) == 20


def test_small_parsers() -> None:
    assert parse_price("12.5") == 12.5 and parse_price("$1,299.00") == 1299.0 and parse_price("€ 30") == 30.0
    assert parse_price("abc") is None and parse_price("1,2,3") is None and parse_price("nan") is None
    assert [normalise_gender(g) for g in ("Men", "Boys", "Women", "Girls", "Unisex", "", "robot")] == [
        "men", "men", "women", "women", "unisex", "unisex", "unisex"]


def test_selfsup_on_records_is_seeded(tmp_path: Path) -> None:
    items = [{"item_id": f"i{n}", "title": f"Acme Widget Model{n} Blue", "image_path": ""} for n in range(40)]
    a = make_selfsupervised_queries(items, tmp_path, seed=3, n_text=20, n_image=5)
    b = make_selfsupervised_queries(items, tmp_path, seed=3, n_text=20, n_image=5)
    c = make_selfsupervised_queries(items, tmp_path, seed=4, n_text=20, n_image=5)
    assert a == b and a != c
    assert len(a) == 20 and all(q["kind"] == "text" for q in a)  # no photos -> no image queries
