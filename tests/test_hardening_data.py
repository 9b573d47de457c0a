"""Issue 17, data side: no code runs from a bundle's TF-IDF file, ingest stays inside its folder, and
live-added text reaches items.csv without spreadsheet formulas."""
from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from modules.config import load_params
from modules.data.delta_ingest import apply_delta
from modules.data.ingest import ingest_catalog
from modules.search.lexical import TfidfIndex
from serving.delta import DeltaLog

DOCS = ["red cotton dress", "blue leather sneakers", "green backpack with red straps", "black dresses"]


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/pixelmatch-pwned",))


def test_tfidf_is_saved_as_npz_and_round_trips(tmp_path: Path) -> None:
    idx = TfidfIndex().fit(DOCS)
    idx.add(["yellow sneaker"])
    idx.save(tmp_path / "tfidf.pkl")
    assert zipfile.is_zipfile(tmp_path / "tfidf.pkl")
    with np.load(tmp_path / "tfidf.pkl", allow_pickle=False) as z:       # no object arrays inside
        assert {"config", "idf", "data", "indices", "indptr", "shape"} <= set(z.files)
    back = TfidfIndex.load(tmp_path / "tfidf.pkl")
    for q in ("red dress", "sneakers yellow", "unknownword"):
        assert np.allclose(idx.scores(q), back.scores(q))
    back.add(["red dress"])                              # rows added after loading use the saved vocabulary
    assert back.scores("red dress")[-1] > 0.99


def test_legacy_tfidf_pickle_loads_but_cannot_run_code(tmp_path: Path) -> None:
    idx = TfidfIndex().fit(DOCS)
    with open(tmp_path / "old.pkl", "wb") as f:
        pickle.dump({"vectorizer": idx.vectorizer, "matrix": idx.matrix}, f)
    assert np.allclose(TfidfIndex.load(tmp_path / "old.pkl").scores("red dress"), idx.scores("red dress"))
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"vectorizer": _Evil(), "matrix": None}, f)
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        TfidfIndex.load(tmp_path / "evil.pkl")


def test_tfidf_pickle_naming_the_old_module_path_loads(tmp_path: Path) -> None:
    """Bundles pickled before issue 19 name the tokenizer ``modules.retrieval.lexical.tokenize`` (now
    ``modules.search.lexical``): they still load."""
    idx = TfidfIndex().fit(DOCS)
    raw = pickle.dumps({"vectorizer": idx.vectorizer, "matrix": idx.matrix}, protocol=3)  # GLOBAL opcode: names as lines
    assert b"modules.search.lexical" in raw
    (tmp_path / "old.pkl").write_bytes(raw.replace(b"modules.search.lexical", b"modules.retrieval.lexical"))
    assert np.allclose(TfidfIndex.load(tmp_path / "old.pkl").scores("red dress"), idx.scores("red dress"))


def _photo(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), (200, 0, 0)).save(path)


def test_ingest_refuses_dotdot_absolute_and_symlinks(tmp_path: Path) -> None:
    shop, secret = tmp_path / "shop", tmp_path / "secret"
    _photo(shop / "pics" / "ok.png")
    _photo(secret / "private.png")
    os.symlink(secret, shop / "pics" / "linkdir")
    os.symlink(secret / "private.png", shop / "pics" / "link.png")
    (shop / "catalog.csv").write_text(
        "item_id,title,image_path\n"
        "ok,Lamp,pics/ok.png\n"
        "dots,Chair,../secret/private.png\n"
        f"abs,Table,{secret / 'private.png'}\n"
        "dirlink,Rug,pics/linkdir/private.png\n"
        "filelink,Vase,pics/link.png\n", encoding="utf-8")
    report = ingest_catalog(shop / "catalog.csv", None, tmp_path / "data", params=load_params(), progress=False)
    items = pd.read_csv(tmp_path / "data" / "items.csv", dtype=str, keep_default_na=False).set_index("item_id")
    assert items.loc["ok", "image_path"].startswith("images/")
    for iid in ("dots", "abs", "dirlink", "filelink"):
        assert items.loc[iid, "image_path"] == "", iid
    reasons = {r["item_id"]: r["reason"] for r in report["rows"]}
    assert "'..'" in reasons["dots"] and "absolute" in reasons["abs"] and "symlink" in reasons["dirlink"]
    assert "symlink" in reasons["filelink"]

    pics = tmp_path / "pics"          # --images folder mode: a symlinked <id>.png is not followed
    _photo(pics / "a.png")
    os.symlink(secret / "private.png", pics / "b.png")
    (shop / "two.csv").write_text("item_id,title\na,Lamp\nb,Chair\n", encoding="utf-8")
    ingest_catalog(shop / "two.csv", pics, tmp_path / "data2", params=load_params(), progress=False)
    items = pd.read_csv(tmp_path / "data2" / "items.csv", dtype=str, keep_default_na=False).set_index("item_id")
    assert items.loc["a", "image_path"] and items.loc["b", "image_path"] == ""


def test_formula_prefixes_are_escaped_in_items_csv(tmp_path: Path) -> None:
    data, sd = tmp_path / "data", tmp_path / "serving"
    data.mkdir()
    (data / "items.csv").write_text(
        "item_id,title,description,category,brand,price,gender,image_path,created_at,material\n"
        "a1,Coat,Warm.,jackets,Acme,120.0,women,,1690000000,wool\n", encoding="utf-8")
    item = {"item_id": "x1", "title": '=HYPERLINK("http://evil","click")', "description": "+cmd|' /C calc'!A0",
            "category": "@SUM(1)", "brand": "-2+3", "attributes": {"material": "=1+1"}}
    DeltaLog(sd).append([{"op": "add", "item": item, "image_file": None}])
    apply_delta(data, sd)
    raw = (data / "items.csv").read_text(encoding="utf-8")
    row = pd.read_csv(io.StringIO(raw), dtype=str, keep_default_na=False).set_index("item_id").loc["x1"]
    for col in ("title", "description", "category", "brand", "material"):
        assert row[col].startswith("'"), (col, row[col])
    assert row["title"] == "'" + item["title"]
