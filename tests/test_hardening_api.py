"""Issue 17 probes: every hostile request gets a 4xx, and a hot swap under load loses no request."""
from __future__ import annotations

import copy
import json
import threading
import time

import pytest
from fastapi.testclient import TestClient
from serving_fixtures import build_bundle, build_serving_dir, real_serving_dir, tiny_loader

from modules.config import load_params
from serving.app import create_app
from serving.schemas import RETRIEVERS
from serving.tf_serving_client import TFServingError

TOKEN = "hardening-token"
NINES = "shoes under " + "9" * 320


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("hard")
    sd = root / "serving_dir"
    build_bundle(sd, "v1", root)
    manifest = json.loads((sd / "v1" / "manifest.json").read_text())
    assert "files" in manifest
    with TestClient(create_app(sd, loader=tiny_loader, watch_interval_s=0), raise_server_exceptions=False) as c:
        yield c, sd


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    sd = real_serving_dir(tmp_path_factory.mktemp("hard-real"))
    with TestClient(create_app(sd, watch_interval_s=0), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture()
def admin(monkeypatch):
    monkeypatch.setenv("PIXELMATCH_ADMIN_TOKEN", TOKEN)
    return {"Authorization": f"Bearer {TOKEN}"}


# ---- query probes (the real engine parses prices and tokenises with the HF tokenizer) -------------------
@pytest.mark.integration      # the cached real tiny bundle (~40 s to load on 2 cores)
def test_price_of_320_nines_with_every_retriever(real):
    for retriever in RETRIEVERS:
        r = real.post("/search/text", json={"query": NINES, "retriever": retriever, "top_k": 3})
        assert r.status_code == 200, (retriever, r.text[:300])
        assert "Infinity" not in r.text and "NaN" not in r.text


@pytest.mark.integration      # the cached real tiny bundle (~40 s to load on 2 cores)
def test_lone_surrogate_is_422(real, tiny):
    for client in (real, tiny[0]):
        r = client.post("/search/text", content=b'{"query": "red dress \\ud800"}',
                        headers={"content-type": "application/json"})
        assert r.status_code == 422 and "surrogate" in str(r.json()["detail"])
        r = client.post("/search/text", content=b'{"query": "red", "filters": {"category": "\\udc00"}}',
                        headers={"content-type": "application/json"})
        assert r.status_code == 422


@pytest.mark.integration      # the cached real tiny bundle (~40 s to load on 2 cores)
def test_leading_whitespace_collapsed_before_truncation(real):
    r = real.post("/search/text", json={"query": " " * 600 + "red dress", "top_k": 3})
    assert r.status_code == 200 and r.json()["results"] and r.json()["query_truncated"] is False


# ---- body caps and the admin token ------------------------------------------------------------------
def test_12mb_json_body_is_413(tiny):
    c, _ = tiny
    big = json.dumps({"query": "red " * (3 * 1024 * 1024)}).encode()
    assert len(big) > 12 * 1024 * 1024
    assert c.post("/search/text", content=big, headers={"content-type": "application/json"}).status_code == 413

    def chunks():                      # chunked transfer: no Content-Length to trust
        yield b'{"query": "'
        for _ in range(200):
            yield b"red " * 16384
        yield b'"}'
    r = c.post("/search/text", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "too large" in r.json()["detail"]


def test_admin_token_checked_before_body(tiny, monkeypatch):
    c, _ = tiny
    bad = {"content-type": "application/json"}
    monkeypatch.delenv("PIXELMATCH_ADMIN_TOKEN", raising=False)
    assert c.post("/admin/items", content=b"{not json", headers=bad).status_code == 403
    monkeypatch.setenv("PIXELMATCH_ADMIN_TOKEN", TOKEN)
    r = c.post("/admin/items", content=b"{not json", headers=bad)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert c.delete("/admin/items/i0001").status_code == 401
    r = c.post("/admin/items", content=b"{not json", headers={**bad, "Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 422


def test_admin_item_caps_and_id_rule(tiny, admin):
    c, _ = tiny
    n = int(load_params()["serving"]["max_item_attributes"]) + 1
    item = {"item_id": "cap-1", "title": "x", "attributes": {f"k{i}": "v" for i in range(n)}}
    assert c.post("/admin/items", json={"items": [item]}, headers=admin).status_code == 422
    assert c.delete("/admin/items/bad%20id", headers=admin).status_code == 422


def test_image_base64_cap(tmp_path, admin):
    params = copy.deepcopy(load_params())
    params["serving"]["max_image_base64_mb"] = 0.001
    sd = build_serving_dir(tmp_path)
    with TestClient(create_app(sd, params, loader=tiny_loader, watch_interval_s=0)) as c:
        item = {"item_id": "b64-1", "title": "x", "image_base64": "A" * 4096}
        assert c.post("/admin/items", json={"items": [item]}, headers=admin).status_code == 413


# ---- headers, leaks, errors -------------------------------------------------------------------------
def test_security_headers_everywhere(tiny):
    c, _ = tiny
    for r in (c.get("/"), c.get("/health"), c.get("/items/nope"), c.post("/search/text", json={})):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "default-src 'self'" in r.headers["content-security-policy"]


def test_ready_hides_paths_and_run_ids(tmp_path):
    root = tmp_path
    sd = root / "serving_dir"
    from modules.bundle import push_atomic, write_manifest

    build_bundle(sd, "v1", root)
    stage = root / "restage-v2"
    import shutil

    shutil.copytree(sd / "v1", stage)
    (stage / "manifest.json").unlink()
    write_manifest(stage, {"version": "v2", "mlmd": {"run_id": "run-123"}, "pipeline_root": str(root)})
    push_atomic(stage, sd, "v2")
    with TestClient(create_app(sd, loader=tiny_loader, watch_interval_s=0)) as c:
        body = c.get("/ready").text
        assert "run-123" not in body and str(root) not in body and '"v2"' in body
    (sd / "v2" / "search" / "items.parquet").write_bytes(b"tampered")
    (sd / "LAST_GOOD").unlink()
    for p in sd.iterdir():                       # only the tampered version is left
        if p.name == "v1":
            shutil.rmtree(p)
    with TestClient(create_app(sd, loader=tiny_loader, watch_interval_s=0)) as c:
        r = c.get("/ready")
        assert r.status_code == 503 and str(root) not in r.text and "SERVING_DIR" in r.text


def test_tf_serving_failure_is_503(tiny):
    c, _ = tiny
    bundle = c.app.state.manager.bundle
    original = bundle.engine.search_text

    def down(*a, **k):
        raise TFServingError("TF Serving unreachable at http://tf:8501")
    bundle.engine.search_text = down
    try:
        r = c.post("/search/text", json={"query": "red dress"})
    finally:
        bundle.engine.search_text = original
    assert r.status_code == 503 and "unavailable" in r.json()["detail"]


def test_health_and_ready_answer_while_workers_are_busy(tiny):
    c, _ = tiny
    results: list[int] = []
    with c.app.state.manager.bundle.lock.write():   # every search blocks in a worker thread
        busy = [threading.Thread(target=lambda: results.append(
            c.post("/search/text", json={"query": "red"}).status_code)) for _ in range(48)]
        for t in busy:
            t.start()
        time.sleep(1.0)
        answered: list[int] = []
        probe = threading.Thread(target=lambda: answered.extend([c.get("/health").status_code,
                                                                 c.get("/ready").status_code]))
        probe.start()
        probe.join(timeout=5)                     # a sync handler would wait for a worker thread: forever
        in_time = list(answered)
    for t in [*busy, probe]:
        t.join(timeout=30)
    assert in_time == [200, 200] and results == [200] * 48


# ---- hot swap under load ----------------------------------------------------------------------------
@pytest.mark.integration      # the cached real tiny bundle (~40 s to load on 2 cores)
def test_swap_under_load_loses_no_request(real, admin):
    stop = threading.Event()
    codes: list[int] = []

    def client_loop(n: int) -> None:
        while not stop.is_set():
            q = ["red dress", "blue leather sneaker", "black backpack", NINES][n % 4]
            codes.append(real.post("/search/text", json={"query": q, "top_k": 5}).status_code)

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            r = real.post("/admin/reload?force=true", headers=admin)
            assert r.status_code == 200 and r.json()["swapped"] is True, r.text[:300]
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert len(codes) > 16 and set(codes) == {200}, {c: codes.count(c) for c in set(codes)}


def test_guard_counts_bytes_not_content_length():
    import asyncio

    from serving.guard import RequestGuard

    reached: list[bool] = []

    async def app(scope, receive, send):           # would be the API; must never see the body
        reached.append(True)

    sent: list[dict] = []
    chunks = [{"type": "http.request", "body": b"x" * 4096, "more_body": True}] * 40

    async def receive():
        return chunks.pop(0) if chunks else {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)
    scope = {"type": "http", "method": "POST", "path": "/search/text", "headers": [(b"content-length", b"10")]}
    asyncio.run(RequestGuard(app, {}, default_limit=64 * 1024)(scope, receive, send))
    assert sent[0]["status"] == 413 and not reached
    assert (b"x-content-type-options", b"nosniff") in sent[0]["headers"]
