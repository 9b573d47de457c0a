"""Issue 17, live writes and swaps: write-ahead, torn-tail repair, a replay that survives a bad record, a
refused LATEST that is neither re-hashed forever nor fatal at start-up."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serving_fixtures import TinyEngine, build_bundle, build_serving_dir, tiny_loader

import serving.bundle_loading as loading
import serving.bundle_manager as bm
from modules.config import load_params
from modules.data.delta_log import read_delta_log
from serving.app import create_app
from serving.delta import DeltaLog

TOKEN = "delta-token"


@pytest.fixture()
def admin(monkeypatch):
    monkeypatch.setenv("PIXELMATCH_ADMIN_TOKEN", TOKEN)
    return {"Authorization": f"Bearer {TOKEN}"}


def _add(c: TestClient, admin: dict, iid: str, title: str = "violet felt hat") -> int:
    return c.post("/admin/items", json={"items": [{"item_id": iid, "title": title}]}, headers=admin).status_code


def test_torn_tail_does_not_swallow_the_next_write(tmp_path: Path) -> None:
    log = DeltaLog(tmp_path)
    log.append([{"op": "delete", "item_id": "a"}])
    with log.path.open("ab") as f:
        f.write(b'{"op": "add", "ts": 1, "item": {"item_id": "torn", "ti')      # a crash mid-write
    log.append([{"op": "delete", "item_id": "b"}])
    parsed = read_delta_log(log.path)
    assert not parsed.problems and not parsed.torn
    assert [r["item_id"] for r in parsed.records] == ["a", "b"]


def test_add_is_logged_before_it_is_applied(tmp_path: Path, admin, monkeypatch) -> None:
    sd = build_serving_dir(tmp_path)
    with TestClient(create_app(sd, loader=tiny_loader, watch_interval_s=0), raise_server_exceptions=False) as c:
        manager = c.app.state.manager
        seen = []
        real_apply = manager._apply_add

        def apply(bundle, entries):
            seen.append([r["item"]["item_id"] for r in read_delta_log(sd / "delta.jsonl").records if r["op"] == "add"])
            if entries[0][0]["item_id"] == "boom":
                raise RuntimeError("engine failed")
            return real_apply(bundle, entries)
        monkeypatch.setattr(manager, "_apply_add", apply)
        assert _add(c, admin, "ok-1") == 200 and seen[-1] == ["ok-1"]     # on disk before the engine changed
        assert _add(c, admin, "boom") == 500
    ops = [(r["op"], r.get("item_id") or r["item"]["item_id"]) for r in read_delta_log(sd / "delta.jsonl").records]
    assert ops == [("add", "ok-1"), ("add", "boom"), ("delete", "boom")]   # the failed new id is tombstoned
    with TestClient(create_app(sd, loader=tiny_loader, watch_interval_s=0)) as c:
        assert c.get("/items/ok-1").status_code == 200 and c.get("/items/boom").status_code == 404


def test_one_bad_record_does_not_refuse_the_bundle(tmp_path: Path, admin, monkeypatch) -> None:
    sd = build_serving_dir(tmp_path)
    with TestClient(create_app(sd, loader=tiny_loader, watch_interval_s=0)) as c:
        assert _add(c, admin, "good-1") == 200 and _add(c, admin, "poison") == 200
    real_add = TinyEngine.add_items

    def add_items(self, records, images=None):
        if any(r["item_id"] == "poison" for r in records):
            raise ValueError("cannot embed this one")
        return real_add(self, records, images)
    monkeypatch.setattr(TinyEngine, "add_items", add_items)
    with TestClient(create_app(sd, loader=tiny_loader, watch_interval_s=0)) as c:
        assert c.get("/ready").json()["ready"] is True
        assert c.get("/items/good-1").status_code == 200 and c.get("/items/poison").status_code == 404


def _tampered_v2(root: Path) -> Path:
    sd = root / "serving_dir"
    build_bundle(sd, "v1", root)
    build_bundle(sd, "v2", root)                    # LATEST -> v2
    (sd / "v2" / "search" / "items.parquet").write_bytes(b"tampered")
    return sd


def test_refused_latest_is_not_rehashed_and_start_falls_back(tmp_path: Path, monkeypatch) -> None:
    sd = _tampered_v2(tmp_path)
    manager = bm.BundleManager(sd, load_params(), loader=tiny_loader)
    first = manager.reload()                        # nothing serving: fall back to the newest good version
    assert first.outcome == "swapped" and manager.bundle.version == "v1" and "v2 refused" in first.message
    calls = []
    real_verify = loading.verify_bundle
    monkeypatch.setattr(loading, "verify_bundle", lambda d: (calls.append(Path(d).name), real_verify(d))[1])
    manager.start_watcher(0.05)
    try:
        time.sleep(0.5)
        assert calls == []                          # the refused v2 is not re-hashed every interval
        manifest = sd / "v2" / "manifest.json"
        os.utime(manifest, ns=(time.time_ns(), time.time_ns() + 10**9))   # a re-push of v2 is tried again
        deadline = time.time() + 5
        while not calls and time.time() < deadline:
            time.sleep(0.05)
        assert calls and calls[0] == "v2" and manager.bundle.version == "v1"
    finally:
        manager.stop_watcher()


def test_two_workers_appending_at_once_lose_nothing(tmp_path: Path) -> None:
    """`serve --workers N`: two processes' DeltaLogs append to one file. While one worker is mid-write, the other's
    torn-tail repair must wait (file lock), not cut the half-written line."""
    import threading

    midway = threading.Event()

    class SlowWorker(DeltaLog):
        @staticmethod
        def _write(f, data: bytes) -> None:
            f.write(data[:10])
            f.flush()
            midway.set()
            time.sleep(0.5)
            f.write(data[10:])

    first = threading.Thread(target=SlowWorker(tmp_path).append, args=([{"op": "delete", "item_id": "from-a"}],))
    first.start()
    assert midway.wait(5)
    DeltaLog(tmp_path).append([{"op": "delete", "item_id": "from-b"}])  # another instance: its own thread lock
    first.join()
    parsed = read_delta_log(tmp_path / "delta.jsonl")
    assert [r["item_id"] for r in parsed.records] == ["from-a", "from-b"] and not parsed.problems and not parsed.torn
