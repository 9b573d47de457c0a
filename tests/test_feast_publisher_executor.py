"""FeastPublisher tables on a tiny input: exact user and item rows, the training window only, and the vectorised
user table equal to the per-user loop it replaced (on a seeded input full of ties)."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd

from components.feast_publisher import executor
from modules.data import data_io

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def _data(d: Path, items: pd.DataFrame, inter: pd.DataFrame, cutoff: int) -> str:
    d.mkdir(parents=True, exist_ok=True)
    items.assign(title="t", description="d", gender="unisex", image_path="").to_csv(d / "items.csv", index=False)
    inter.to_csv(d / "interactions.csv", index=False)
    (d / "manifest.json").write_text(json.dumps({"cutoff_ts": cutoff}))
    return str(d)


def _loop_user_table(data_dir: str, history_len: int) -> pd.DataFrame:
    """The per-user loop the vectorised table replaced (the reference)."""
    inter = data_io.training_interactions(data_dir)
    items = executor.load_items(data_dir)[["item_id", "category", "brand", "price"]].astype({"item_id": str})
    df = inter.merge(items, on="item_id", how="left").sort_values(["user_id", "ts"], ascending=[True, False])
    rows = [{"user_id": str(uid), "recent_items": g["item_id"].head(history_len).astype(str).tolist(),
             "n_events": int(len(g)), "top_categories": g["category"].value_counts().head(3).index.astype(str).tolist(),
             "top_brand": str(g["brand"].mode().iloc[0]) if g["brand"].notna().any() else "",
             "mean_price": float(pd.to_numeric(g["price"]).mean())} for uid, g in df.groupby("user_id", sort=True)]
    return pd.DataFrame(rows)


def test_tiny_tables(tmp_path: Path) -> None:
    items = pd.DataFrame({"item_id": ["a", "b", "c", "d"], "category": ["shoes", "bags", "shoes", "hats"],
                          "brand": ["x", "y", "y", "x"], "price": [10.0, 20.0, 30.0, 40.0], "created_at": [1, 1, 1, 50]})
    inter = pd.DataFrame({"user_id": ["u1", "u1", "u1", "u2", "u2", "u1"], "item_id": ["a", "b", "c", "b", "b", "d"],
                          "event": ["view"] * 6, "ts": [1, 2, 3, 5, 4, 60]})  # the last row is after the cutoff
    data = _data(tmp_path / "data", items, inter, cutoff=50)
    users = executor.user_table(data, history_len=2, now=NOW, n_price_bands=2, colors={"b": "red", "c": "blue"})
    assert users["user_id"].tolist() == ["u1", "u2"] and users["n_events"].tolist() == [3, 2]
    assert users["recent_items"].tolist() == [["c", "b"], ["b", "b"]]  # newest first, at most history_len
    assert users["top_categories"].tolist() == [["shoes", "bags"], ["bags"]]
    assert users["top_brand"].tolist() == ["y", "y"] and users["mean_price"].tolist() == [20.0, 20.0]
    # the recent profile: categories/colours of recent_items in order; band of their median price (bands: < 25, >= 25)
    assert users["recent_categories"].tolist() == [["shoes", "bags"], ["bags"]]
    assert users["recent_colors"].tolist() == [["blue", "red"], ["red"]]
    assert users["price_band"].tolist() == [1, 0] and users["last_event_ts"].tolist() == [3, 5]
    assert (users["event_timestamp"] == pd.Timestamp(NOW)).all()

    emb = tmp_path / "emb"
    emb.mkdir()
    (emb / data_io.EMB_IDS_FILE).write_text(json.dumps(["d", "c", "b", "a"]))  # stored order != catalog order
    text = np.arange(16, dtype=np.float32).reshape(4, 4)[::-1] + 1
    np.save(emb / data_io.EMB_TEXT_FILE, text)
    np.save(emb / data_io.EMB_IMAGE_FILE, np.vstack([np.zeros((1, 2)), np.ones((3, 2))]).astype(np.float32))
    table = executor.item_table(data, str(emb), NOW)
    assert table["item_id"].tolist() == ["a", "b", "c", "d"]
    assert table["popularity"].tolist() == [1.0, 3.0, 1.0, 0.0]  # training window only: d's view is held out
    assert table["cold_start"].tolist() == [0, 0, 0, 1] and table["has_image"].tolist() == [1, 1, 1, 0]
    vec = np.array(table["embedding"].tolist())
    assert np.allclose(np.linalg.norm(vec, axis=1), 1.0, atol=1e-6) and not vec[3, 4:].any()


def test_vectorised_user_table_equals_the_loop(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    n_items, n = 40, 3000
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)],
                          "category": rng.choice(["a", "b", "c", "d", "e"], n_items),
                          "brand": rng.choice(["p", "q", "r", ""], n_items),
                          "price": np.round(rng.uniform(1, 99, n_items), 2), "created_at": 1})
    inter = pd.DataFrame({"user_id": [f"u{u}" for u in rng.integers(0, 300, n)],
                          "item_id": [f"i{i}" for i in rng.integers(0, n_items + 3, n)],  # some unknown items
                          "event": "view", "ts": rng.integers(0, 200, n)})  # many equal timestamps
    data = _data(tmp_path, items, inter, cutoff=180)
    got = executor.user_table(data, history_len=5, now=NOW, n_price_bands=5)
    want = _loop_user_table(data, history_len=5)
    for col in ("user_id", "recent_items", "n_events", "top_brand"):
        assert got[col].tolist() == want[col].tolist(), col
    assert np.allclose(got["mean_price"], want["mean_price"], rtol=1e-12, equal_nan=True)
    # top categories: the same counts; ties now go to the most recently seen category (value_counts left their
    # order to pandas' hash table, so a few users list tied categories in another order)
    inter = data_io.training_interactions(data).merge(items, on="item_id", how="left").sort_values(
        ["user_id", "ts"], ascending=[True, False])
    for uid, g_cats, w_cats in zip(got["user_id"], got["top_categories"], want["top_categories"], strict=True):
        seen = inter.loc[inter["user_id"] == uid, "category"].dropna().tolist()
        counts = pd.Series(seen).value_counts()
        assert [counts[c] for c in g_cats] == [counts[c] for c in w_cats]
        assert g_cats == sorted(counts.index, key=lambda c: (-counts[c], seen.index(c)))[:3]
