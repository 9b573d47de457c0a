"""Hot swap: LATEST -> reload (admin + watcher), refusal of bad bundles, in-flight references, serialisation."""
from __future__ import annotations

import json
import os
import threading
import time

import pytest
from fastapi.testclient import TestClient
from serving_fixtures import build_bundle, build_serving_dir, tiny_loader

from modules.bundle import write_manifest
from modules.config import load_params
from serving.app import create_app
from serving.bundle_manager import BundleManager

TOKEN = "swap-token"
H = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def _token(monkeypatch):
    monkeypatch.setenv("PIXELMATCH_ADMIN_TOKEN", TOKEN)


def _point_latest(serving_dir, version: str) -> None:
    tmp = serving_dir / ".LATEST.test"
    tmp.write_text(version + "\n")
    os.replace(tmp, serving_dir / "LATEST")


def test_admin_reload_swaps_to_new_version(tmp_path):
    sd = build_serving_dir(tmp_path)
    with TestClient(create_app(sd, loader=tiny_loader, watch_interval_s=0)) as c:
        assert c.post("/admin/reload", headers=H).json()["swapped"] is False     # unchanged
        build_bundle(sd, "v2", tmp_path, title_suffix="quasar")
        r = c.post("/admin/reload", headers=H)
        assert r.status_code == 200 and r.json()["swapped"] is True
        assert r.json()["version"] == "v2" and r.json()["previous_version"] == "v1"
        hits = c.post("/search/text", json={"query": "quasar"}).json()
        assert hits["bundle_version"] == "v2" and "quasar" in hits["results"][0]["title"]
        assert 'pixelmatch_bundle_reloads_total{outcome="swapped"}' in c.get("/metrics").text


def test_corrupted_bundle_is_refused_old_keeps_serving(tmp_path, caplog):
    sd = build_serving_dir(tmp_path)
    with TestClient(create_app(sd, loader=tiny_loader, watch_interval_s=0)) as c:
        build_bundle(sd, "v2", tmp_path)
        (sd / "v2" / "search" / "items.parquet").write_bytes(b"tampered")       # checksum mismatch
        r = c.post("/admin/reload", headers=H)
        assert r.status_code == 409 and "checksum mismatch" in r.json()["message"]
        assert c.get("/ready").json()["version"] == "v1"
        assert c.post("/search/text", json={"query": "red dress"}).status_code == 200
    assert any("refused" in rec.getMessage() for rec in caplog.records)


def test_bundle_with_valid_checksums_but_broken_index_is_refused(tmp_path):
    sd = build_serving_dir(tmp_path)
    with TestClient(create_app(sd, loader=tiny_loader, watch_interval_s=0)) as c:
        build_bundle(sd, "v2", tmp_path)
        (sd / "v2" / "search" / "image_feats.npy").write_bytes(b"not numpy")
        manifest = json.loads((sd / "v2" / "manifest.json").read_text())
        write_manifest(sd / "v2", {k: v for k, v in manifest.items() if k != "files"})   # checksums now match
        r = c.post("/admin/reload", headers=H)
        assert r.status_code == 409 and "v2 refused" in r.json()["message"]
        assert c.get("/ready").json()["version"] == "v1"


def test_latest_naming_missing_version_is_refused(tmp_path):
    sd = build_serving_dir(tmp_path)
    with TestClient(create_app(sd, loader=tiny_loader, watch_interval_s=0)) as c:
        _point_latest(sd, "does-not-exist")
        r = c.post("/admin/reload", headers=H)
        assert r.status_code == 409 and c.get("/ready").json()["version"] == "v1"


def test_watcher_follows_latest(tmp_path):
    sd = build_serving_dir(tmp_path, versions=("v1", "v2"))
    _point_latest(sd, "v1")
    with TestClient(create_app(sd, loader=tiny_loader, watch_interval_s=0.1)) as c:
        assert c.get("/ready").json()["version"] == "v1"
        _point_latest(sd, "v2")
        deadline = time.time() + 10
        while c.get("/ready").json()["version"] != "v2" and time.time() < deadline:
            time.sleep(0.05)
        assert c.get("/ready").json()["version"] == "v2"


def test_in_flight_reference_survives_swap(tmp_path):
    sd = build_serving_dir(tmp_path, versions=("v1", "v2"))
    _point_latest(sd, "v1")
    mgr = BundleManager(sd, load_params(), loader=tiny_loader)
    assert mgr.reload().outcome == "swapped"
    held = mgr.bundle                       # what a request took at its start
    _point_latest(sd, "v2")
    assert mgr.reload().outcome == "swapped"
    assert mgr.bundle.version == "v2" and held.version == "v1"
    assert held.engine.search_text("red dress", top_k=1).results      # the old engine still answers
    assert held.engine is not mgr.bundle.engine


def test_concurrent_reloads_never_overlap(tmp_path):
    sd = build_serving_dir(tmp_path, versions=("v1", "v2"))
    active = 0
    overlaps = 0
    lock = threading.Lock()

    def slow_loader(vdir, params):
        nonlocal active, overlaps
        with lock:
            active += 1
            overlaps += active > 1
        time.sleep(0.05)
        try:
            return tiny_loader(vdir, params)
        finally:
            with lock:
                active -= 1

    mgr = BundleManager(sd, load_params(), loader=slow_loader)
    results = []
    threads = [threading.Thread(target=lambda: results.append(mgr.reload(force=True))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == 0
    assert [r.outcome for r in results] == ["swapped"] * 6 and mgr.bundle.version == "v2"


def test_search_during_swaps_never_fails(tmp_path):
    sd = build_serving_dir(tmp_path, versions=("v1", "v2"))
    with TestClient(create_app(sd, loader=tiny_loader, watch_interval_s=0)) as c:
        stop = threading.Event()
        codes: list[int] = []

        def searcher() -> None:
            while not stop.is_set():
                codes.append(c.post("/search/text", json={"query": "blue sneaker"}).status_code)

        t = threading.Thread(target=searcher)
        t.start()
        for v in ("v1", "v2", "v1", "v2"):
            _point_latest(sd, v)
            assert c.post("/admin/reload", headers=H).status_code == 200
        stop.set()
        t.join()
        assert codes and set(codes) == {200}
