"""modules/recommend/online_features: one event at a time gives the row the publisher builds from the whole history."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.feast_publisher import executor
from modules.recommend.online_features import ItemAttrs, apply_event, history_len, recent_profile

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def _attrs() -> ItemAttrs:
    return ItemAttrs.build(["a", "b", "c", "d"], ["shoes", "bags", "shoes", "hats"], [10.0, 20.0, 30.0, float("nan")],
                           ["red", "", "blue", "red"], n_price_bands=2)


def test_recent_items_cover_the_longest_reader_window() -> None:
    params = {"recommend": {"two_tower": {"history_len": 20}, "content": {"history_len": 50}}}
    assert history_len(params) == 50
    params["recommend"]["two_tower"]["history_len"] = 64
    assert history_len(params) == 64


def test_apply_event_on_a_new_then_known_user() -> None:
    attrs = _attrs()
    row = apply_event(None, "c", 100, attrs, n_recent=2)
    assert row == {"recent_items": ["c"], "session_items": ["c"], "recent_categories": ["shoes"], "recent_colors": ["blue"], "price_band": 1,
                   "n_events": 1, "mean_price": 30.0, "top_categories": [], "top_brand": "", "last_event_ts": 100}
    row = apply_event({**row, "top_categories": ["shoes"], "top_brand": "x"}, "b", 90, attrs, n_recent=2)
    assert row["recent_items"] == ["b", "c"] and row["recent_categories"] == ["bags", "shoes"]
    assert row["recent_colors"] == ["blue"] and row["mean_price"] == 25.0 and row["n_events"] == 2
    assert row["last_event_ts"] == 100 and row["top_categories"] == ["shoes"] and row["top_brand"] == "x"
    row = apply_event(row, "d", 120, attrs, n_recent=2)     # no price: the mean is left as it is
    assert row["recent_items"] == ["d", "b"] and row["mean_price"] == 25.0
    assert row["price_band"] == 1 and row["recent_colors"] == ["red"]   # band boundary 20 (the median), b costs 20
    assert recent_profile(["zzz"], attrs) == {"recent_categories": [], "recent_colors": [], "price_band": -1}


def test_events_folded_one_by_one_equal_the_published_row(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n_items = 30
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)], "category": rng.choice(list("abcde"), n_items),
                          "brand": "p", "price": np.round(rng.uniform(1, 99, n_items), 2), "created_at": 1,
                          "title": "t", "description": "d", "gender": "unisex", "image_path": ""})
    n = 400
    inter = pd.DataFrame({"user_id": [f"u{u}" for u in rng.integers(0, 20, n)],
                          "item_id": [f"i{i}" for i in rng.integers(0, n_items, n)], "event": "view",
                          "ts": rng.permutation(n) + 1})          # distinct timestamps: one arrival order
    items.to_csv(tmp_path / "items.csv", index=False)
    inter.to_csv(tmp_path / "interactions.csv", index=False)
    (tmp_path / "manifest.json").write_text(json.dumps({"cutoff_ts": n + 1}))
    colors = {f"i{i}": ["red", "blue", ""][i % 3] for i in range(n_items)}
    table = executor.user_table(str(tmp_path), 6, NOW, n_price_bands=4, colors=colors).set_index("user_id")
    attrs = ItemAttrs.build(items["item_id"], items["category"], items["price"], [colors[i] for i in items["item_id"]], 4)
    for user, events in inter.sort_values("ts").groupby("user_id"):
        row = None
        for ev in events.itertuples():
            row = apply_event(row, ev.item_id, ev.ts, attrs, n_recent=6)
        want = table.loc[user]
        for key in ("recent_items", "recent_categories", "recent_colors", "price_band", "n_events", "last_event_ts"):
            assert list(np.atleast_1d(row[key])) == list(np.atleast_1d(want[key])), (user, key)
        assert row["mean_price"] == pytest.approx(want["mean_price"])
