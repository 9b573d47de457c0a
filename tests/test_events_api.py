"""POST /events over HTTP: events reach the Feast online store at once and /recommend follows them; bad events get a
422; an online store that cannot be written gives a 503 (the event is never dropped silently).

The recommendation tests serve the cached real tiny bundle (HybridRecommender with ALS) with a real Feast repository
built by FeastPublisher's own code (tests/feast_fixtures.py)."""
from __future__ import annotations

import copy
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from feast_fixtures import build_feature_repo
from serving_fixtures import build_serving_dir, real_serving_dir, tiny_loader

from modules.config import load_params
from serving.app import create_app


def _params(repo: Path, **fs: object) -> dict:
    params = copy.deepcopy(load_params())
    params["serving"]["feature_store"] = {"repo_path": str(repo), **fs}
    return params


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory, real_bundle: Path):
    root = tmp_path_factory.mktemp("events_real")
    serving = real_serving_dir(root)
    repo = build_feature_repo(root, real_bundle / "data", load_params())
    # a generous read timeout: these tests are about what the answer holds, on a CPU shared with other jobs
    app = create_app(serving, _params(repo, timeout_ms=10_000), watch_interval_s=0)
    with TestClient(app) as client:
        yield client, pd.read_csv(real_bundle / "data" / "items.csv", dtype={"item_id": str})


def _recommend(client: TestClient, user: str) -> dict:
    r = client.get(f"/recommend/{user}?top_k=10")
    assert r.status_code == 200, r.text
    return r.json()


def _categories(client: TestClient, body: dict) -> list[str]:
    return [client.get(f"/items/{r['item_id']}").json()["category"] for r in body["results"]]


def _post(client: TestClient, user: str, item: str, event: str = "view", **extra: object):
    return client.post("/events", json={"user_id": user, "item_id": item, "event": event, **extra})


def _target_category(items: pd.DataFrame, avoid: list[str]) -> tuple[str, list[str]]:
    """A category the user has not been recommended, with at least 6 items."""
    counts = items["category"].value_counts()
    cat = next(c for c in counts.index if c not in avoid and counts[c] >= 6)
    return cat, items.loc[items["category"] == cat, "item_id"].tolist()


def test_events_turn_a_new_user_toward_what_was_viewed(real) -> None:
    client, items = real
    before = _recommend(client, "fresh-user-1")
    assert before["fallback"] == "cold_user" and before["feature_store"] == "ok"
    cat, ids = _target_category(items, _categories(client, before)[:1])
    for i, item in enumerate(ids[:3]):
        r = _post(client, "fresh-user-1", item, "click" if i else "view")
        assert r.status_code == 200, r.text
    body = r.json()
    assert body["recent_item_ids"] == ids[:3][::-1] and body["recent_categories"] == [cat] and body["n_events"] == 3
    after = _recommend(client, "fresh-user-1")
    assert after["fallback"] is None and after["feature_store"] == "ok"
    share_before = _categories(client, before).count(cat) / 10
    share_after = _categories(client, after).count(cat) / 10
    assert share_after >= 0.6 and share_after > share_before + 0.3, (share_before, share_after)


def test_events_move_an_existing_user_and_no_event_changes_nothing(real) -> None:
    client, items = real
    inter = client.app.state.manager.bundle.recommender.histories.sequences
    user = sorted(inter, key=lambda u: (-len(inter[u]), u))[0]       # the user with the longest history
    before = _recommend(client, user)
    assert before["fallback"] is None and before["feature_store"] == "ok"
    features = client.app.state.features
    features.lookup = "off"                     # the same request without the online lookup: the snapshot answer
    try:
        snapshot = _recommend(client, user)
    finally:
        features.lookup = "auto"
    assert snapshot["feature_store"] == "disabled"
    assert [r["item_id"] for r in snapshot["results"]] == [r["item_id"] for r in before["results"]]

    cat, ids = _target_category(items, _categories(client, before))
    for item in ids[:6]:
        assert _post(client, user, item, "add_to_cart").status_code == 200
    after = _recommend(client, user)
    share_before, share_after = _categories(client, before).count(cat) / 10, _categories(client, after).count(cat) / 10
    assert share_after >= share_before + 0.2, (cat, share_before, share_after)


def test_bad_events_get_a_clear_422(real) -> None:
    client, items = real
    item = str(items["item_id"].iloc[0])
    cases = {
        "unknown item": ({"user_id": "u", "item_id": "no-such-item", "event": "view"}, "item_id: unknown item"),
        "unknown type": ({"user_id": "u", "item_id": item, "event": "like"}, "event: unknown event type"),
        "future": ({"user_id": "u", "item_id": item, "event": "view", "ts": int(time.time()) + 3600}, "in the future"),
        "missing": ({"user_id": "u", "event": "view"}, "item_id: field required"),
        "oversized": ({"user_id": "u" * 129, "item_id": item, "event": "view"}, "user_id: at most 128 characters"),
        "extra": ({"user_id": "u", "item_id": item, "event": "view", "price": 3}, "price: extra fields not permitted"),
        "ts type": ({"user_id": "u", "item_id": item, "event": "view", "ts": "soon"}, "ts: value is not a valid"),
        "empty": ({"user_id": "", "item_id": item, "event": "view"}, "user_id: ensure this value has at least 1"),
    }
    for name, (body, message) in cases.items():
        r = client.post("/events", json=body)
        assert r.status_code == 422, (name, r.text)
        assert any(message in m for m in r.json()["detail"]), (name, r.json())
    skew = client.app.state.settings.config.serving.events.max_clock_skew_s
    assert _post(client, "u", item, ts=int(time.time() + skew / 2)).status_code == 200   # within the allowed skew
    assert client.post("/events", content=b"{" + b" " * 70_000 + b"}",
                       headers={"content-type": "application/json"}).status_code == 413


def test_unwritable_store_is_a_503(tmp_path: Path, real) -> None:
    client, _ = real
    serving = build_serving_dir(tmp_path)
    good = Path(client.app.state.features.repo_path)
    broken = tmp_path / "broken_repo"
    shutil.copytree(good, broken, ignore=shutil.ignore_patterns("__pycache__", "online_store.db"))
    (broken / "data" / "online_store.db").mkdir()        # SQLite cannot open a directory
    empty = tmp_path / "never_materialised"
    shutil.copytree(good, empty, ignore=shutil.ignore_patterns("__pycache__", "data"))
    for repo, message in ((broken, "could not be written"), (empty, "has not been materialised")):
        app = create_app(serving, _params(repo), loader=tiny_loader, watch_interval_s=0)
        with TestClient(app) as c:
            r = c.post("/events", json={"user_id": "u0001", "item_id": "i0003", "event": "purchase"})
            assert r.status_code == 503 and message in r.json()["detail"], r.text
            assert "retry" in r.json()["detail"]
            rec = c.get("/recommend/u0001?top_k=3").json()     # reads keep answering (content-only or snapshot)
            assert rec["feature_store"] == ("unavailable" if repo == broken else "disabled")
