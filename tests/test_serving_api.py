"""API behaviour of the serving app (serving/app.py, serving/routes/) on a tiny checksummed bundle (serving_fixtures)."""
from __future__ import annotations

import base64
import json
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serving_fixtures import build_serving_dir, png_bytes, real_serving_dir, tiny_loader

from modules.config import load_params
from serving.app import create_app

TOKEN = "test-admin-token"


@pytest.fixture(scope="module")
def serving_dir(tmp_path_factory):
    return build_serving_dir(tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="module")
def client(serving_dir):
    app = create_app(serving_dir, loader=tiny_loader, watch_interval_s=0)
    with TestClient(app) as c:
        yield c


@pytest.fixture()
def admin(monkeypatch):
    monkeypatch.setenv("PIXELMATCH_ADMIN_TOKEN", TOKEN)
    return {"Authorization": f"Bearer {TOKEN}"}


def test_health_and_ready(client):
    assert client.get("/health").json() == {"status": "ok"}
    client.post("/search/text", json={"query": "red dress"})
    r = client.get("/ready").json()
    assert r["ready"] is True and r["version"] == "v1"
    assert r["manifest"]["blessing"] == "test-fixture" and "files" not in r["manifest"]
    assert r["latency"]["count"] >= 1 and r["latency"]["p50_ms"] > 0
    assert r["latency"]["p50_ms"] <= r["latency"]["p95_ms"] <= r["latency"]["p99_ms"]
    assert r["text_backend"] == "in_process"


def test_text_search_result_shape_and_ranking(client):
    r = client.post("/search/text", json={"query": "green leather sneaker", "top_k": 5})
    assert r.status_code == 200
    body = r.json()
    assert len(body["results"]) == 5 and body["bundle_version"] == "v1"
    top = body["results"][0]
    assert top["title"] == "green leather sneaker"
    assert top["image_url"] == f"/items/{top['item_id']}/image"
    assert set(top["explain"]) == {"lexical", "dense", "two_tower", "reranker", "filled", "same_photo"}
    assert top["explain"]["same_photo"] is None   # a text query: no photo to be the same as
    assert top["explain"]["filled"] is None  # no attribute of this item was learned from its photo
    assert body["latency_ms"] > 0 and isinstance(body["low_confidence"], bool)


def test_text_search_filters(client):
    r = client.post("/search/text", json={"query": "leather", "top_k": 50,
                                          "filters": {"category": "backpack", "price_max": 150}})
    assert r.status_code == 200
    ids = [x["item_id"] for x in r.json()["results"]]
    assert ids
    for iid in ids:
        item = client.get(f"/items/{iid}").json()
        assert item["category"] == "backpack" and item["price"] <= 150


def test_image_search_finds_same_colour(client):
    r = client.post("/search/image", files={"image": ("q.png", png_bytes("blue", "dress"), "image/png")},
                    data={"top_k": "3"})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["title"].startswith("blue")


def test_multimodal_search(client):
    r = client.post("/search/multimodal", files={"image": ("q.png", png_bytes("yellow", "sneaker"), "image/png")},
                    data={"text": "cotton backpack", "image_weight": "0.5", "top_k": "5"})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["title"] == "yellow cotton backpack"


def test_similar_and_unknown_item(client):
    r = client.get("/similar/i0000?top_k=4")
    assert r.status_code == 200
    ids = [x["item_id"] for x in r.json()["results"]]
    assert len(ids) == 4 and "i0000" not in ids
    assert client.get("/similar/nope?top_k=4").status_code == 404


def test_recommend_known_and_cold_user(client):
    r = client.get("/recommend/u0001?top_k=5&context=i0001,not-an-item")
    assert r.status_code == 200
    body = r.json()
    assert body["fallback"] is None and len(body["results"]) == 5
    assert body["items"] == body["results"]          # the deprecated alias: the same list, for one release
    assert body["feature_store"] in ("disabled", "ok")
    cold = client.get("/recommend/never-seen?top_k=3").json()
    assert cold["fallback"] == "cold_user" and len(cold["results"]) == 3 and cold["items"] == cold["results"]


def test_recommend_survives_broken_feature_store(serving_dir, tmp_path):
    params = load_params()
    not_a_repo = tmp_path / "feature_repo"
    not_a_repo.mkdir()
    params["serving"]["feature_store"] = {"repo_path": str(not_a_repo), "features": ["user_stats:n_events"],
                                          "timeout_ms": 300, "lookup": "on"}   # auto would call it disabled
    app = create_app(serving_dir, params, loader=tiny_loader, watch_interval_s=0)
    with TestClient(app) as c:
        r = c.get("/recommend/u0001?top_k=3")
    assert r.status_code == 200
    assert r.json()["feature_store"] == "unavailable" and len(r.json()["results"]) == 3
    assert r.json()["fallback"] == "content_only"


def test_item_and_image(client):
    item = client.get("/items/i0004").json()
    assert item["title"] == "red cotton backpack" and item["attributes"]["material"] == "cotton"
    img = client.get("/items/i0004/image")
    assert img.status_code == 200 and img.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get("/items/zzz").status_code == 404
    assert client.get("/items/zzz/image").status_code == 404
    # a path in the request never reaches the filesystem
    assert client.get("/items/..%2F..%2Fmanifest.json/image").status_code == 404


def test_metrics_exposes_endpoints_and_stages(client):
    client.post("/search/text", json={"query": "black dress"})
    text = client.get("/metrics").text
    assert 'pixelmatch_requests_total{endpoint="/search/text",method="POST",status="200"}' in text
    assert 'pixelmatch_request_latency_seconds_bucket{endpoint="/search/text"' in text
    assert 'pixelmatch_stage_latency_seconds_count{stage="search"}' in text


def test_admin_disabled_without_token(client, monkeypatch):
    monkeypatch.delenv("PIXELMATCH_ADMIN_TOKEN", raising=False)
    assert client.post("/admin/reload").status_code == 403
    assert client.post("/admin/items", json={"items": [{"item_id": "x", "title": "x"}]}).status_code == 403


def test_admin_wrong_token(client, admin):
    assert client.post("/admin/reload", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/admin/reload").status_code == 401


def test_live_add_searchable_then_delete_and_survives_restart(client, admin, serving_dir):
    item = {"item_id": "live-001", "title": "zorblax velvet cape", "category": "dress", "price": 42.0,
            "attributes": {"material": "velvet"},
            "image_base64": base64.b64encode(png_bytes("green", "dress")).decode()}
    t0 = time.perf_counter()
    r = client.post("/admin/items", json={"items": [item]}, headers=admin)
    assert r.status_code == 200, r.text
    hits = client.post("/search/text", json={"query": "zorblax", "top_k": 3}).json()["results"]
    add_to_searchable_ms = (time.perf_counter() - t0) * 1000
    assert hits[0]["item_id"] == "live-001"
    assert r.json()["add_to_searchable_ms"] < add_to_searchable_ms < 10_000
    assert client.get("/items/live-001").json()["live_added"] is True
    assert client.get("/items/live-001/image").content[:4] == b"\x89PNG"
    records = [json.loads(line) for line in (serving_dir / "delta.jsonl").read_text().splitlines()]
    assert records[-1]["op"] == "add" and records[-1]["item"]["item_id"] == "live-001"
    assert "image_base64" not in records[-1]["item"]

    assert client.delete("/admin/items/i0001", headers=admin).status_code == 200
    assert client.delete("/admin/items/i0001", headers=admin).status_code == 404
    ids = [x["item_id"] for x in client.post("/search/text", json={"query": "red leather dress", "top_k": 36}).json()["results"]]
    assert "i0001" not in ids
    assert client.get("/items/i0001").status_code == 404

    # A fresh process replays the delta log: live item present, deleted item gone.
    with TestClient(create_app(serving_dir, loader=tiny_loader, watch_interval_s=0)) as fresh:
        assert fresh.post("/search/text", json={"query": "zorblax"}).json()["results"][0]["item_id"] == "live-001"
        assert fresh.get("/items/i0001").status_code == 404
        assert fresh.get("/ready").json()["live_items_added"] == 1


def test_unicode_and_emoji_query(client):
    r = client.post("/search/text", json={"query": "robe rouge 👗 élégante — 红色"})
    assert r.status_code == 200
    assert isinstance(r.json()["results"], list)


def test_openapi_and_page(client):
    assert "/search/text" in client.get("/openapi.json").json()["paths"]
    page = client.get("/")
    assert page.status_code == 200 and "PixelMatch" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_recommend_when_feature_store_hangs(serving_dir, monkeypatch):
    from serving.feature_store import FeatureStoreAdapter

    def hang(self, user_id):
        time.sleep(2)
        return {}

    monkeypatch.setattr(FeatureStoreAdapter, "_fetch", hang)
    params = load_params()
    params["serving"]["feature_store"] = {"repo_path": str(serving_dir), "features": ["user_features:n_events"],
                                          "timeout_ms": 100, "lookup": "on"}
    with TestClient(create_app(serving_dir, params, loader=tiny_loader, watch_interval_s=0)) as c:
        t0 = time.perf_counter()
        r = c.get("/recommend/u0001?top_k=3")
        assert time.perf_counter() - t0 < 1.5
    assert r.status_code == 200 and r.json()["feature_store"] == "unavailable"
    assert r.json()["fallback"] == "content_only" and len(r.json()["results"]) == 3


# ---------------------------------------------------------------------------------------------------------------
# The REAL tiny bundle (generated catalog, MiniLM in-process, trained image tower, ALS hybrid) with the default
# loader: the exact code path `pixelmatch serve` runs.
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real(tmp_path_factory):
    sd = real_serving_dir(tmp_path_factory.mktemp("real"))
    # no online store: the repo's own feature_repo/ holds one once a pipeline test has published to it, and the
    # lookup (`auto`) would then turn on for this bundle too (tests/test_events_api.py covers the store)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PIXELMATCH_FEATURE_REPO", str(tmp_path_factory.mktemp("no_feature_repo")))
        with TestClient(create_app(sd, watch_interval_s=0)) as c:
            yield c, sd


@pytest.mark.integration
def test_real_bundle_text_image_similar(real):
    c, sd = real
    ready = c.get("/ready").json()
    assert ready["version"] == "real1" and ready["text_backend"] == "in_process"
    import pandas as pd

    items = pd.read_parquet(sd / "real1" / "search" / "items.parquet")
    title, iid = items.loc[7, "title"], items.loc[7, "item_id"]
    hits = c.post("/search/text", json={"query": title, "top_k": 5}).json()["results"]
    assert iid in [h["item_id"] for h in hits[:3]]
    # the title names a brand, an intent no training query of this 12-query ranker expressed: the hybrid order serves
    assert all(h["explain"]["reranker"] is None for h in hits)
    # a category query (6 training queries told candidates apart by category): the bundle's LambdaMART re-ranker
    # orders the results, its score is the result score, best first
    hits = c.post("/search/text", json={"query": items.loc[7, "category"], "top_k": 5}).json()["results"]
    scores = [h["explain"]["reranker"] for h in hits]
    assert all(isinstance(v, float) for v in scores) and scores == sorted(scores, reverse=True)
    assert [h["score"] for h in hits] == scores
    assert all(h["image_url"] for h in hits)
    photo = c.get(f"/items/{iid}/image")
    assert photo.status_code == 200
    by_photo = c.post("/search/image", files={"image": ("q.png", photo.content, "image/png")}, data={"top_k": "5"})
    # the item's own photo: the same photo, first, said so in explain (its distance to itself is ~0)
    assert by_photo.status_code == 200 and by_photo.json()["results"][0]["item_id"] == iid
    assert 0 <= by_photo.json()["results"][0]["explain"]["same_photo"] < 0.5
    sim = c.get(f"/similar/{iid}?top_k=5").json()["results"]
    assert len(sim) == 5 and iid not in [h["item_id"] for h in sim]
    mm = c.post("/search/multimodal", files={"image": ("q.png", photo.content, "image/png")},
                data={"text": title, "image_weight": "0.5", "top_k": "5"})
    assert mm.status_code == 200 and mm.json()["results"][0]["item_id"] == iid


@pytest.mark.integration
def test_real_bundle_recommend(real):
    c, sd = real
    hist = json.loads((sd / "real1" / "recommend" / "histories.json").read_text())
    known = next(iter(hist["users"]))          # a user with training-window history
    r = c.get(f"/recommend/{known}?top_k=5").json()
    assert len(r["results"]) == 5 and r["fallback"] is None and r["feature_store"] == "disabled"
    cold = c.get("/recommend/nobody-at-all?top_k=5").json()
    assert cold["fallback"] == "cold_user" and len(cold["results"]) == 5


@pytest.mark.integration
def test_real_bundle_live_add_is_first_on_next_search(real, admin):
    c, sd = real
    latencies = []
    for n in range(3):
        word = f"quixotrel{n}"
        item = {"item_id": f"live-real-{n}", "title": f"{word} linen overshirt", "category": "shirt", "price": 55.0,
                "image_base64": base64.b64encode(png_bytes("blue", "dress", 96)).decode()}
        t0 = time.perf_counter()
        assert c.post("/admin/items", json={"items": [item]}, headers=admin).status_code == 200
        first = c.post("/search/text", json={"query": word, "top_k": 3}).json()["results"][0]["item_id"]
        latencies.append((time.perf_counter() - t0) * 1000)
        assert first == f"live-real-{n}"
    # add-to-searchable (POST /admin/items then the search that finds it), client side, in-process TestClient; the
    # first add also loads the engine's transform graph (tensorflow_transform imported then, not at bundle load)
    print(f"add-to-searchable ms: {[round(x) for x in latencies]}")
    assert max(latencies) < 30_000
    engine = c.app.state.manager.bundle.engine  # the live items' ranker price feature: the bundle graph's value
    z = engine.price_log_z[[engine.id_to_row[f"live-real-{n}"] for n in range(3)]]
    import pandas as pd

    catalog = pd.read_parquet(sd / "real1" / "search" / "items.parquet")  # the catalog the graph was analysed on
    log_price = np.log1p(catalog["price"].to_numpy(np.float64))
    assert np.allclose(z, (np.log1p(55.0) - log_price.mean()) / log_price.std(), atol=1e-4), z
