"""Personalised search: user-issued queries from an interaction log, the two-tower score as a re-ranker feature the
ranker learns, and ``user_id`` on /search/text and /search/image (``explain.two_tower``).

The ranker and serving tests use the cached real tiny bundle and a real two-tower trained (a few epochs) on its
training window and exported as the pipeline exports it."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modules.config import load_params
from modules.evaluation.user_queries import build_user_queries
from modules.search.personalise import UserScores, user_history
from serving.personalise import snapshot_history

CUTOFF = 1000


def _log() -> tuple[pd.DataFrame, pd.DataFrame]:
    items = pd.DataFrame({"item_id": ["a1", "a2", "a3", "b1", "b2"],
                          "category": ["t_shirts", "t_shirts", "t_shirts", "shoes", "shoes"],
                          "brand": ["X", "Y", "X", "X", "Z"], "gender": ["men", "men", "women", "men", "men"]})
    rows = [("u1", "b1", "view", 10), ("u1", "b2", "view", 20), ("u1", "a1", "click", 30),       # history
            ("u1", "a1", "view", 1100), ("u1", "a2", "purchase", 1200), ("u1", "a1", "add_to_cart", 1300),
            ("u1", "zz", "view", 1400),                                                          # unknown item
            ("u2", "a1", "view", 10),                                                            # too short
            ("u2", "b1", "purchase", 1100),
            ("u3", "a3", "view", 10), ("u3", "a2", "view", 11), ("u3", "b2", "view", 12),
            ("u3", "b2", "click", 1500)]
    return items, pd.DataFrame(rows, columns=["user_id", "item_id", "event", "ts"])


def _params(**uq: object) -> dict:
    params = copy.deepcopy(load_params())
    params["ranking"]["user_queries"] = {**params["ranking"]["user_queries"], **uq}
    return params


def test_user_queries_from_a_tiny_log() -> None:
    items, log = _log()
    qs = build_user_queries(log, items, CUTOFF, _params(min_history=3, extra_prob=0.0, eval_fraction=0.0), seed=1)
    by_user = {q["user_id"]: q for q in qs}
    assert set(by_user) == {"u1", "u3"}                      # u2 has one event before the cut-off
    u1 = [q for q in qs if q["user_id"] == "u1"]
    assert [q["text"] for q in u1] == ["t shirts"]           # one distinct text; "_" read as a space
    assert u1[0]["relevance"] == {"a1": 2, "a2": 3}          # best event per item: add_to_cart 2, purchase 3
    assert by_user["u3"]["text"] == "shoes" and by_user["u3"]["relevance"] == {"b2": 1}
    assert all(q["split"] == "train" and q["source"] == "user" and q["kind"] == "text" for q in qs)
    assert len({q["qid"] for q in qs}) == len(qs)
    # an extra column narrows the relevance to the items that match it too
    qs = build_user_queries(log, items, CUTOFF, _params(min_history=3, extra_prob=1.0, extra_columns=["brand"],
                                                        eval_fraction=0.0, max_per_user=5), seed=1)
    texts = {q["text"]: q["relevance"] for q in qs if q["user_id"] == "u1"}
    assert texts == {"X t shirts": {"a1": 2}, "Y t shirts": {"a2": 3}}


def test_user_queries_split_by_user_and_seeded() -> None:
    items, log = _log()
    params = _params(min_history=1, eval_fraction=0.5)
    a, b = build_user_queries(log, items, CUTOFF, params, seed=7), build_user_queries(log, items, CUTOFF, params, seed=7)
    assert a == b
    splits = {}
    for q in a:
        splits.setdefault(q["user_id"], set()).add(q["split"])
    assert all(len(s) == 1 for s in splits.values())          # a user is never on both sides
    assert sorted(s for v in splits.values() for s in v) == ["eval", "eval", "train"]   # round(3 * 0.5) users

def test_user_scores_are_lazy_dot_products_and_history_is_fresh() -> None:
    item_vectors = np.eye(3, dtype=np.float32)
    scores = UserScores(np.array([0.5, -1.0, 2.0]), item_vectors, {"a": 0, "b": 1, "c": 2})
    assert scores.get("b") == -1.0 and scores["c"] == 2.0 and scores.get("zz", 0.0) == 0.0
    assert bool(scores) and len(scores._cache) == 2           # only what was asked for
    # snapshot (oldest first) + events posted since the publish (session_items, newest first)
    assert user_history(["a", "b"], {"recent_items": ["c", "b", "a"], "session_items": ["c"]}) == ["a", "b", "c"]
    assert user_history([], {"recent_items": ["c", "b"], "session_items": []}) == ["b", "c"]
    assert user_history(["a"], None) == ["a"]


# ---------------------------------------------------------------------------------------------------- real bundle
@pytest.fixture(scope="module")
def tower_setup(tmp_path_factory: pytest.TempPathFactory, real_bundle: Path):
    """The real tiny bundle's engine, a two-tower trained on its training window and exported, and the params."""
    from modules.data.data_io import load_interactions, load_items, read_cutoff, split_interactions
    from modules.recommend.features import tower_content
    from modules.recommend.two_tower import train_two_tower
    from modules.recommend.two_tower_export import export_two_tower
    from modules.search import SearchEngine

    params = copy.deepcopy(load_params())
    params["recommend"]["two_tower"]["epochs"] = 3
    version = (real_bundle / "serving_dir" / "LATEST").read_text().strip()
    engine = SearchEngine.load(real_bundle / "serving_dir" / version / "search", params=params)
    data = real_bundle / "data"
    items = load_items(data)
    assert engine.items["item_id"].astype(str).tolist() == items["item_id"].astype(str).tolist()
    train, _ = split_interactions(load_interactions(data), read_cutoff(data))
    content = tower_content(engine.state.text_index.vectors, engine.state.image_index.vectors)
    model = train_two_tower(train, items, content, params, seed=42)
    export = export_two_tower(model, tmp_path_factory.mktemp("tt") / "two_tower" / "1", "text+image")
    return engine, export, params, data


def test_ranker_trained_on_user_queries_learns_two_tower(tower_setup) -> None:
    from modules.data.data_io import load_queries
    from modules.evaluation.user_queries import personalised_queries
    from modules.search.rerank_train import build_training_frame, train_ranker

    engine, export, params, data = tower_setup
    params = copy.deepcopy(params)
    params["ranking"]["user_queries"].update(min_history=2, eval_fraction=0.0)
    user_queries, contexts = personalised_queries(engine, str(data), str(export), params, seed=42)
    assert user_queries and set(contexts) <= {q["qid"] for q in user_queries} and contexts
    judged = load_queries(data, split="train")
    train = judged + [q for q in user_queries if q["qid"] in contexts]
    X, y, groups, qids = build_training_frame(engine, train, data_dir=str(data), contexts=contexts)
    user_rows = np.isin(qids, list(contexts))
    assert user_rows.any() and (~user_rows).any()
    assert (X.loc[~user_rows, "two_tower"] == 0).all()                 # text-only queries keep two_tower 0
    assert (X.loc[user_rows, "two_tower"] != 0).mean() > 0.9
    ranker = train_ranker(X, y, groups, params=params, seed=42, qids=qids)
    assert ranker.feature_importance()["two_tower"] > 0


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, tower_setup):
    from fastapi.testclient import TestClient
    from feast_fixtures import build_feature_repo
    from serving_fixtures import real_serving_dir

    from serving.app import create_app
    from serving.personalise import bundle_tower, warm_in_background

    _, export, params, data = tower_setup
    root = tmp_path_factory.mktemp("ps_serving")
    serving = real_serving_dir(root)
    params = copy.deepcopy(params)    # the online store on, with a generous timeout (a CPU shared with other jobs)
    params["serving"]["feature_store"] = {"repo_path": str(build_feature_repo(root, data, load_params())),
                                          "timeout_ms": 10_000}
    app = create_app(serving, params, watch_interval_s=0)
    with TestClient(app) as c:
        bundle = app.state.manager.bundle
        bundle.__dict__["_tower_thread"].join(timeout=300)   # the swap's warm-up: no tower, the bundle ships ALS
        assert bundle.__dict__.get("_user_tower") is not None and bundle_tower(bundle) is None
        bundle.recommender.two_tower_dir = str(export)       # absolute: the bundle itself ships an ALS recommender
        bundle.__dict__.pop("_user_tower")
        warm_in_background(bundle).join(timeout=300)          # what a swap does, now with a two-tower to load
        user = next(iter(bundle.recommender.histories.sequences))
        yield c, user, bundle


def test_the_user_tower_is_built_before_the_first_personalised_request(client) -> None:
    from modules.search.personalise import UserTower

    _, _, bundle = client
    assert isinstance(bundle.__dict__.get("_user_tower"), UserTower)   # built by warm_in_background, not a request


def test_search_text_with_user_id_explains_two_tower(client) -> None:
    c, user, _ = client
    plain = c.post("/search/text", json={"query": "dress", "top_k": 10})
    assert plain.status_code == 200
    assert plain.json()["results"] and all(r["explain"]["two_tower"] is None for r in plain.json()["results"])
    mine = c.post("/search/text", json={"query": "dress", "top_k": 10, "user_id": user})
    assert mine.status_code == 200, mine.text
    values = [r["explain"]["two_tower"] for r in mine.json()["results"]]
    assert values and all(isinstance(v, float) for v in values) and len(set(values)) > 1


def test_search_image_with_user_id(client) -> None:
    from serving_fixtures import png_bytes

    c, user, _ = client
    files = {"image": ("q.png", png_bytes("red", "dress"), "image/png")}
    r = c.post("/search/image", files=files, data={"user_id": user, "top_k": "5"})
    assert r.status_code == 200, r.text
    assert all(isinstance(x["explain"]["two_tower"], float) for x in r.json()["results"])


def test_unknown_user_gets_the_ordinary_answer(client) -> None:
    c, _, _ = client
    plain = c.post("/search/text", json={"query": "dress", "top_k": 10}).json()
    unknown = c.post("/search/text", json={"query": "dress", "top_k": 10, "user_id": "nobody-at-all"})
    assert unknown.status_code == 200
    assert [r["item_id"] for r in unknown.json()["results"]] == [r["item_id"] for r in plain["results"]]
    assert all(r["explain"]["two_tower"] is None for r in unknown.json()["results"])
    too_long = c.post("/search/text", json={"query": "dress", "user_id": "u" * 1000})
    assert too_long.status_code == 422


def test_events_posted_now_change_the_user_embedding(client) -> None:
    """POST /events writes session_items online; the next personalised search embeds the user with them."""
    c, user, bundle = client
    body = {"query": "bag", "top_k": 10, "user_id": user}
    before = {r["item_id"]: r["explain"]["two_tower"] for r in c.post("/search/text", json=body).json()["results"]}
    seen = set(snapshot_history(bundle, user))
    fresh = [i for i in bundle.items if i not in seen][:3]
    for item in fresh:
        assert c.post("/events", json={"user_id": user, "item_id": item, "event": "purchase"}).status_code == 200
    after = {r["item_id"]: r["explain"]["two_tower"] for r in c.post("/search/text", json=body).json()["results"]}
    common = set(before) & set(after)
    assert common and any(abs(before[i] - after[i]) > 1e-6 for i in common)
