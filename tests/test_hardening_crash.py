"""Issue 17 crash test: a real server process adds items through /admin in a loop, is killed with SIGKILL
mid-stream and restarted. Every acknowledged add is back; a half-written record does not break replay."""
from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from serving_fixtures import build_serving_dir, png_bytes

from modules.data.delta_log import read_delta_log

TOKEN = "crash-token"
TESTS = Path(__file__).resolve().parent
LAUNCH = ("import sys; sys.path.insert(0, {tests!r}); import uvicorn; from serving_fixtures import tiny_loader; "
          "from serving.app import create_app; "
          "uvicorn.run(create_app({sd!r}, loader=tiny_loader, watch_interval_s=0), host='127.0.0.1', port={port}, "
          "log_level='warning')")


def _start(sd: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PIXELMATCH_ADMIN_TOKEN": TOKEN, "PYTHONPATH": str(TESTS.parent)}
    proc = subprocess.Popen([sys.executable, "-c", LAUNCH.format(tests=str(TESTS), sd=str(sd), port=port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, "server exited during start-up"
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("server did not become ready")


@pytest.mark.integration      # a live uvicorn server, started twice
def test_kill_9_mid_stream_loses_no_acknowledged_add(tmp_path: Path) -> None:
    sd = build_serving_dir(tmp_path)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    image = base64.b64encode(png_bytes("green", "sneaker", 32)).decode()
    acked: list[str] = []
    proc, url = _start(sd)

    def writer() -> None:
        with httpx.Client(timeout=5) as http:
            for n in range(10_000):
                iid = f"crash-{n}"
                body = {"items": [{"item_id": iid, "title": f"crash test item {n}", "image_base64": image}]}
                try:
                    r = http.post(f"{url}/admin/items", json=body, headers=auth)
                except httpx.HTTPError:
                    return                                  # the server died under this request
                if r.status_code == 200:
                    acked.append(iid)

    t = threading.Thread(target=writer)
    try:
        t.start()
        deadline = time.time() + 30
        while len(acked) < 25 and time.time() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)                   # mid-stream: a request is in flight
        proc.wait(timeout=10)
        t.join(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(acked) >= 25
    with (sd / "delta.jsonl").open("ab") as f:              # what a crash inside write() leaves behind
        f.write(b'{"op": "add", "ts": 1.0, "item": {"item_id": "half-rec')

    proc, url = _start(sd)
    try:
        with httpx.Client(timeout=5) as http:
            missing = [i for i in acked if http.get(f"{url}/items/{i}").status_code != 200]
            assert not missing, f"{len(missing)} acknowledged adds lost, e.g. {missing[:3]}"
            assert http.get(f"{url}/items/{acked[-1]}/image").status_code == 200
            r = http.post(f"{url}/admin/items", headers=auth,
                          json={"items": [{"item_id": "after-restart", "title": "after the crash"}]})
            assert r.status_code == 200
    finally:
        proc.kill()
        proc.wait(timeout=10)
    parsed = read_delta_log(sd / "delta.jsonl")
    assert not parsed.problems and not parsed.torn          # the half record was cut, not glued to the next one
    assert parsed.records[-1]["item"]["item_id"] == "after-restart"
