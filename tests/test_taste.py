"""Attribute taste (columns learned from the catalog, leave-last-out weights) and new-arrival slots."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from recommend_fixtures import tiny_split

from modules.config import load_params
from modules.recommend.features import UserHistories
from modules.recommend.hybrid import HybridRecommender, build_recommender
from modules.recommend.new_arrivals import new_arrival_index, with_new_arrivals
from modules.recommend.taste import PHOTO_COLOUR, PRICE_BAND, AttributeTaste, attribute_columns


def _catalog(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "item_id": [f"i{i:04d}" for i in range(n)],
        "title": [f"title {i}" for i in range(n)],          # free text: unique per item, never an attribute
        "style": rng.choice(["a", "b", "c", "d"], n),       # what users have a taste for
        "noise": rng.choice(["x", "y", "z", "w"], n),       # drawn independently of users
        "price": rng.uniform(5, 100, n),
        "category": ["one"] * n,                            # a single value says nothing: not an attribute
    })


def _histories(items: pd.DataFrame, n_users: int = 300, length: int = 8, seed: int = 1) -> UserHistories:
    """Each user interacts only with items of one favourite style, in random order."""
    rng = np.random.default_rng(seed)
    seqs = {}
    for u in range(n_users):
        fav = rng.choice(["a", "b", "c", "d"])
        pool = np.flatnonzero(items["style"].to_numpy() == fav)
        seqs[f"u{u}"] = rng.choice(pool, length, replace=False).astype(np.int64)
    return UserHistories(seqs, {u: np.zeros(0, np.int64) for u in seqs}, 0)


def test_attribute_columns_are_the_catalogs_low_cardinality_text_columns() -> None:
    assert attribute_columns(_catalog(), max_cardinality=200) == ["style", "noise"]
    assert attribute_columns(_catalog(), max_cardinality=3) == []


def test_lifts_favour_the_history_s_values() -> None:
    items = _catalog()
    taste = AttributeTaste.from_items(items, None, load_params())
    assert taste.names == ["style", "noise", PRICE_BAND]
    hist = np.flatnonzero(items["style"].to_numpy() == "a")[:6]
    lift = taste.lifts(hist)[:, 0]
    is_a = items["style"].to_numpy() == "a"
    assert lift[is_a].min() > 0 > lift[~is_a].max()
    assert not taste.lifts(np.zeros(0, np.int64)).any()


def test_fit_weights_the_column_users_choose_by_and_not_the_noise() -> None:
    items = _catalog()
    params = load_params()
    taste = AttributeTaste.from_items(items, None, params)
    flat = np.zeros(len(items))
    weights = taste.fit(_histories(items), lambda h: flat if len(h) else None, params, seed=0)
    assert set(weights) == {"content", "style", "noise", PRICE_BAND}
    assert weights["style"] > 0.5 and abs(weights["noise"]) < 0.25 * weights["style"]
    hist = np.flatnonzero(items["style"].to_numpy() == "b")[:5]
    top = np.argsort(-taste.score(hist, flat))[:20]
    assert (items["style"].to_numpy()[top] == "b").all()


def test_photo_colours_are_a_column_and_taste_round_trips(tmp_path: Path) -> None:
    items = _catalog(50)
    colours = ["red" if i % 2 else "navy" for i in range(50)]
    taste = AttributeTaste.from_items(items, colours, load_params())
    assert taste.names[-1] == PHOTO_COLOUR
    with pytest.raises(ValueError, match="photo colours"):
        AttributeTaste.from_items(items, colours[:-1], load_params())
    taste.weights = np.array([0.5, -0.1, 0.2, 1.5])
    taste.save(tmp_path / "taste.npz")
    back = AttributeTaste.load(tmp_path / "taste.npz")
    hist = np.arange(5)
    np.testing.assert_array_equal(back.score(hist, np.zeros(50)), taste.score(hist, np.zeros(50)))


def test_new_arrivals_are_uninteracted_and_recent() -> None:
    day = 86_400
    counts = np.array([0, 0, 3, 0])
    created = np.array([100 * day, 95 * day, 99 * day, 10 * day])
    assert new_arrival_index(counts, created, days=30).tolist() == [0, 1]
    assert new_arrival_index(counts, np.zeros(4), days=30).tolist() == [0, 1, 3]  # no creation times


def test_slots_replace_the_lowest_warm_places_with_the_best_new_items() -> None:
    scores = np.array([9.0, 8.0, 7.0, 6.0, 1.0, 3.0, 2.0, 0.5])
    new_idx = np.array([4, 5, 6, 7])
    top = np.array([0, 1, 2, 3])
    out = with_new_arrivals(top, scores, new_idx, exclude=np.array([5]), slots=2)
    assert out.tolist() == [0, 1, 6, 4]                       # 5 is excluded; 6 (2.0) before 4 (1.0)
    assert with_new_arrivals(np.array([0, 6, 1]), scores, new_idx, np.zeros(0, int), 1).tolist() == [0, 6, 1]
    assert with_new_arrivals(top, scores, new_idx, np.zeros(0, int), 0).tolist() == top.tolist()


@pytest.fixture(scope="module")
def tiny(tiny_catalog: Path) -> SimpleNamespace:
    params = load_params()
    params["recommend"]["hybrid"]["collaborative"] = "als"
    return tiny_split(tiny_catalog, params)


def test_served_recommendations_keep_new_arrival_slots(tiny: SimpleNamespace, tmp_path: Path) -> None:
    params = {**tiny.params, "recommend": {**tiny.params["recommend"],
                                           "hybrid": {**tiny.params["recommend"]["hybrid"], "new_arrival_slots": 3}}}
    rec = build_recommender(tiny.items, tiny.train, tiny.text, None, None, params, seed=42)
    assert rec.content.taste is not None and len(rec.new_arrivals) > 0
    new = {rec.item_ids[i] for i in rec.new_arrivals}
    user = rec.histories.user_ids[0]
    resp = rec.recommend(user, top_k=10)
    assert len(resp.items) == 10 and len({r.item_id for r in resp.items}) == 10
    assert sum(r.item_id in new for r in resp.items) >= 3
    assert all(r.item_id in new for r in resp.items if r.path == "new_arrival")
    rec.save(tmp_path / "rec")
    back = HybridRecommender.load(tmp_path / "rec")
    assert back.content.taste is not None
    assert [r.item_id for r in back.recommend(user, top_k=10).items] == [r.item_id for r in resp.items]


def test_evaluation_scores_the_slots_next_to_the_plain_hybrid(tiny: SimpleNamespace) -> None:
    from modules.evaluation.recommend import evaluate_recommenders

    res = evaluate_recommenders(tiny.items, tiny.inter, tiny.cutoff, tiny.text, None, None, tiny.params, seed=42,
                                new_item_ids=tiny.new_ids, models=("content", "hybrid_als"), new_arrival_slots=3)
    plain, slotted = res["models"]["hybrid_als"], res["models"]["hybrid_als+new_arrivals"]
    assert res["new_arrival_slots"] == 3 and "3 new-arrival slots" in slotted["label"]
    assert slotted["cold_recall@10"] >= plain["cold_recall@10"]
    assert slotted["cold_recall@10_among_new"] == plain["cold_recall@10_among_new"]   # same scores, same new ranking
    assert set(res["taste_weights"]) >= {"content", "price_band"}
