"""Real-data integration test (issue #7): ingest ~300 rows of the fashion sample -> run the pipeline -> serve.

The catalog CSV is written in a tmp dir with an ``image_path`` column pointing (relatively) at the photos in
../shared/datasets/fashion-sample/images, which are read in place and never copied into the repo. A few
crafted bad rows (duplicate id, broken photo, missing title) ride along to show they are reported, not fatal,
and that a text-only item flows through the whole pipeline.
"""
from __future__ import annotations

import csv
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from feast_fixtures import empty_feature_repo

from modules.config import load_params, shared_dir
from modules.data.ingest import ingest_catalog

pytestmark = pytest.mark.integration

FASHION = shared_dir() / "datasets" / "fashion-sample"
N_ROWS = 300
MAPPING = {"item_id": "id", "category": "articleType", "color": "baseColour"}


def _write_catalog(tmp: Path) -> Path:
    """First N_ROWS of the sample + image_path (relative to the CSV) + three bad rows."""
    with (FASHION / "catalog.csv").open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = [r for _, r in zip(range(N_ROWS), reader, strict=False)]
        header = list(reader.fieldnames or [])
    (tmp / "photos").mkdir()
    for r in rows:  # beside the CSV: ingest refuses '..', absolute and symlinked image paths
        shutil.copyfile(FASHION / "images" / f"{r['id']}.jpg", tmp / "photos" / f"{r['id']}.jpg")
        r["image_path"] = f"photos/{r['id']}.jpg"
    (tmp / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated, not a photo")
    bad = [
        {**rows[0], "title": "A duplicate of the first row"},                            # duplicate id
        {**rows[1], "id": "99001", "image_path": "broken.jpg"},                          # broken photo: text-only
        {**rows[2], "id": "99002", "title": ""},                                         # missing title
    ]
    path = tmp / "catalog.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=header + ["image_path"])
        w.writeheader()
        w.writerows(rows + bad)
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served_catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, dict]]:
    import uvicorn

    from pipelines.local_runner import run_pipeline
    from serving.app import create_app

    tmp = tmp_path_factory.mktemp("real_catalog")
    data, serving = tmp / "data", tmp / "serving"
    report = ingest_catalog(_write_catalog(tmp), None, data, mapping=MAPPING, seed=42, params=load_params(),
                            progress=False)
    repo = empty_feature_repo(tmp)  # never the repository's own feature_repo/data
    code = run_pipeline(str(data), str(serving), pipeline_root=str(tmp / "pipeline_root"), feature_repo=str(repo))
    assert code == 0, f"pipeline exited {code}"
    assert (serving / "LATEST").is_file(), "the pipeline did not bless/push a bundle for the ingested catalog"

    port = _free_port()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PIXELMATCH_FEATURE_REPO", str(repo))   # the store this run published to
        app = create_app(str(serving))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "server did not become ready within 120 s"
        assert thread.is_alive(), "server thread died during startup"
        time.sleep(0.5)
    try:
        yield base, data, report
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _items(data: Path) -> dict[str, dict[str, str]]:
    with (data / "items.csv").open(newline="", encoding="utf-8") as f:
        return {r["item_id"]: r for r in csv.DictReader(f)}


def test_bad_rows_reported_not_fatal(served_catalog: tuple[str, Path, dict]) -> None:
    _, data, report = served_catalog
    assert report["counts"]["items"] == N_ROWS + 1 and report["counts"]["rejected"] == 2
    assert report["problems"] == {"duplicate_id": 1, "empty_title": 1, "bad_image": 1}
    assert _items(data)["99001"]["image_path"] == ""
    assert json.loads((data / "ingest_report.json").read_text())["problems"] == report["problems"]


def test_colour_and_type_text_query_returns_that_type(served_catalog: tuple[str, Path, dict]) -> None:
    base, data, _ = served_catalog
    items = _items(data)
    r = httpx.post(f"{base}/search/text", json={"query": "black watches", "top_k": 10}, timeout=30)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 10
    categories = [items[x["item_id"]]["category"] for x in results]
    assert categories.count("Watches") >= 7, categories
    colours = [items[x["item_id"]]["color"] for x in results[:5]]
    assert colours.count("Black") >= 3, colours


def test_image_search_with_own_photo_returns_that_product_first(served_catalog: tuple[str, Path, dict]) -> None:
    base, data, _ = served_catalog
    ids = [i for i, r in _items(data).items() if r["image_path"]]
    for item_id in (ids[5], ids[len(ids) // 2], ids[-3]):
        photo = (FASHION / "images" / f"{item_id}.jpg").read_bytes()
        r = httpx.post(f"{base}/search/image", files={"image": (f"{item_id}.jpg", photo, "image/jpeg")},
                       data={"top_k": "5"}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["results"][0]["item_id"] == item_id


def test_recommend_falls_back_to_content_without_interactions(served_catalog: tuple[str, Path, dict]) -> None:
    base, data, _ = served_catalog
    items = _items(data)
    for user in ("anyone", "u_12345"):
        r = httpx.get(f"{base}/recommend/{user}", params={"top_k": 5}, timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["fallback"] == "no_interactions"
        assert 1 <= len(body["results"]) <= 5 and all(x["item_id"] in items for x in body["results"])
