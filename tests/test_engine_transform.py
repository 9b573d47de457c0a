"""The search engine's Transform features (modules/search/transformed.py): the re-ranker's ``price`` feature is the
transform graph's ``price_log_z`` (modules/transform.py) of each catalog row, for training and serving alike; a
live-added item gets the graph's value; the feature and the graph survive save/load; and an engine saved before
them keeps serving the raw price its ranker was trained on."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_search import FakeImageEncoder, FakeTextEncoder, crafted_items, swatch

from modules.config import load_params
from modules.encoders.color_naming import dominant_color_name
from modules.search import SearchEngine, document_text
from modules.search.rerank_train import build_training_frame
from modules.search.transformed import PRICE_FILE, TRANSFORM_DIR, ItemGraph, catalog_price_log_z

NEW = {"item_id": "new1", "title": "Zorblax hover sneaker", "description": "Levitates.", "category": "Sneakers ",
       "brand": "Nobody", "price": 99.0, "gender": "unisex"}


def _build(price_log_z: np.ndarray | None, item_graph: ItemGraph | None) -> SearchEngine:
    """The crafted catalog of tests/test_search.py with fake encoders."""
    items, images = crafted_items()
    text_enc = FakeTextEncoder()
    img_enc = FakeImageEncoder(text_enc)
    return SearchEngine.build(items, text_enc.encode(document_text(items)), img_enc.encode_images(images), None,
                              text_enc, img_enc, load_params(), item_colors=[dominant_color_name(im) for im in images],
                              price_log_z=price_log_z, item_graph=item_graph)


def _engine() -> SearchEngine:
    """``_build`` with the catalog's Transform features analysed in-process (the analysis is reused within the
    process for the same items, so each build is cheap after the first)."""
    price_z, graph, _ = catalog_price_log_z(crafted_items()[0], load_params())
    return _build(price_z, graph)


def _graph_price_log_z(transform_dir: str, rows: pd.DataFrame) -> np.ndarray:
    """``price_log_z`` of raw rows by the graph itself, in-process (not through the engine)."""
    import tensorflow_transform as tft

    from modules.recommend.item_transform import transform_rows

    return transform_rows(tft.TFTransformOutput(transform_dir), rows)["price_log_z"]


def _feature_by_id(engine: SearchEngine, query: str) -> dict[str, float]:
    feats = engine.candidate_features(query)
    return dict(zip(feats["item_id"], feats["price"], strict=True))


def test_the_price_feature_is_the_graphs_price_log_z_for_catalog_rows() -> None:
    items, _ = crafted_items()
    price_z, graph, source = catalog_price_log_z(items, load_params())
    assert source == "in_process"
    np.testing.assert_allclose(price_z, _graph_price_log_z(graph.directory, items), rtol=1e-6, atol=1e-6)
    log_price = np.log1p(items["price"].to_numpy(np.float64))  # the preprocessing_fn's definition, by hand
    np.testing.assert_allclose(price_z, (log_price - log_price.mean()) / log_price.std(), atol=1e-4)

    engine = _engine()
    feats = engine.candidate_features("red sneakers under 80")
    rows = np.array([engine.id_to_row[i] for i in feats["item_id"]])
    assert len(rows) > 5
    np.testing.assert_array_equal(feats["price"].to_numpy(), price_z[rows].astype(np.float64))
    assert not np.allclose(feats["price"], engine.price[rows])  # not the raw price any more
    # price_in_range stays on the raw price: the query's numbers are prices
    np.testing.assert_array_equal(feats["price_in_range"], (engine.price[rows] <= 80).astype(np.float32))

    # the ranker's training rows read the same array: build_training_frame takes the query's candidates, in order,
    # through candidate_features, the path serving re-ranks
    query = {"qid": "q1", "split": "train", "kind": "text", "text": "red sneakers under 80",
             "relevance": {str(feats["item_id"].iloc[0]): 2}}
    X, _, _, _ = build_training_frame(engine, [query])
    assert len(X) > 5
    np.testing.assert_array_equal(X["price"].to_numpy(), price_z[rows][:len(X)])


def test_a_live_added_item_gets_the_graphs_value() -> None:
    engine = _engine()
    n_rows = engine.n_rows
    engine.prepare_add()  # what serving calls outside its write lock: the graph loads, the state stays
    assert engine.item_graph._layer is not None and engine.n_rows == n_rows == len(engine.price_log_z)
    assert engine.add_items([NEW], [swatch("yellow")]) == ["new1"]
    row = engine.id_to_row["new1"]
    want = _graph_price_log_z(engine.item_graph.directory, pd.DataFrame([NEW]))[0]
    assert engine.price_log_z.dtype == np.float32 and len(engine.price_log_z) == engine.n_rows
    assert engine.price_log_z[row] == pytest.approx(float(want), abs=1e-6)
    # the catalog's statistics, not the new row's: the graph is applied, never re-analysed
    items, _ = crafted_items()
    log_price = np.log1p(items["price"].to_numpy(np.float64))
    assert want == pytest.approx((np.log1p(99.0) - log_price.mean()) / log_price.std(), abs=1e-4)
    assert _feature_by_id(engine, "zorblax")["new1"] == pytest.approx(float(want), abs=1e-6)
    engine.add_items([{**NEW, "price": 10.0}], [None])  # a replacement gets its new price's value
    assert engine.price_log_z[engine.id_to_row["new1"]] < engine.price_log_z[row]


def test_save_and_load_keep_the_feature_and_the_graph(tmp_path: Path) -> None:
    engine = _engine()
    engine.add_items([NEW], [None])
    engine.save(tmp_path / "search")
    assert (tmp_path / "search" / PRICE_FILE).is_file()
    assert (tmp_path / "search" / TRANSFORM_DIR / "transform_fn").is_dir()  # the engine's own copy of the graph
    text_enc = engine.text_encoder
    again = SearchEngine.load(tmp_path / "search", text_encoder=text_enc, image_encoder=FakeImageEncoder(text_enc))
    np.testing.assert_array_equal(again.price_log_z, engine.price_log_z)
    assert Path(again.item_graph.directory) == tmp_path / "search" / TRANSFORM_DIR
    assert _feature_by_id(again, "zorblax") == _feature_by_id(engine, "zorblax")
    again.add_items([{**NEW, "item_id": "new2"}], [None])  # the loaded engine's graph gives the same value
    assert again.price_log_z[again.id_to_row["new2"]] == pytest.approx(engine.price_log_z[engine.id_to_row["new1"]])
    shutil.rmtree(tmp_path / "search" / TRANSFORM_DIR)
    with pytest.raises(FileNotFoundError, match="transform graph"):
        SearchEngine.load(tmp_path / "search", text_encoder=text_enc, image_encoder=FakeImageEncoder(text_enc))


def test_an_engine_saved_without_the_feature_serves_the_raw_price(tmp_path: Path) -> None:
    """An old bundle: no price_log_z.npy, no transform_graph/. Its ranker was trained on the raw price, so the
    feature stays the raw price, live adds included (and they need no transform graph)."""
    engine = _engine()
    engine.save(tmp_path / "search")
    (tmp_path / "search" / PRICE_FILE).unlink()
    shutil.rmtree(tmp_path / "search" / TRANSFORM_DIR)
    text_enc = engine.text_encoder
    old = SearchEngine.load(tmp_path / "search", text_encoder=text_enc, image_encoder=FakeImageEncoder(text_enc))
    assert old.price_log_z is None and old.item_graph is None
    old.add_items([NEW], [None])
    prices = _feature_by_id(old, "zorblax")
    assert prices["new1"] == 99.0
    assert all(v == old.price[old.id_to_row[i]] for i, v in prices.items())
    raw = _build(None, None)  # SearchEngine.build without them is the same
    assert raw.price_log_z is None
    assert all(v == raw.price[raw.id_to_row[i]] for i, v in _feature_by_id(raw, "red sneakers").items())
    old.save(tmp_path / "again")
    assert not (tmp_path / "again" / PRICE_FILE).exists()
    with pytest.raises(ValueError, match="go together"):
        _build(np.zeros(len(crafted_items()[0]), np.float32), None)
