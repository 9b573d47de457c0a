"""POST /search/look: regions with boxes and results; every bad input gets a clear answer (tiny bundle)."""
from __future__ import annotations

import copy
import io

import pytest
from fastapi.testclient import TestClient
from look_fixtures import blank_png, generated_looks, look_png
from PIL import Image
from serving_fixtures import build_serving_dir, tiny_loader

from modules.config import load_params
from serving.app import create_app


def _params(**serving) -> dict:
    params = copy.deepcopy(load_params())
    params["look"]["mode"] = "salient"          # model-free here; tests/test_look.py covers the models
    params["serving"].update(serving)
    return params


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("look_api")
    sd = build_serving_dir(root)
    with TestClient(create_app(sd, _params(max_image_pixels=2_000_000), loader=tiny_loader, watch_interval_s=0),
                    raise_server_exceptions=False) as c:
        yield c, generated_looks(root, n_looks=4)


def _post(c, data: bytes, name: str = "look.png", ctype: str = "image/png", **form):
    return c.post("/search/look", files={"image": (name, data, ctype)}, data={k: str(v) for k, v in form.items()})


def test_regions_with_boxes_and_results(client):
    c, (data, records) = client
    rec = next(r for r in records if r["scene"] == "outfit")
    r = _post(c, look_png(data, rec), top_k=5)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["image_width"], body["image_height"]) == (rec["width"], rec["height"])
    assert body["proposer"] == "salient" and body["regions"]
    for reg in body["regions"]:
        x0, y0, x1, y1 = reg["box"]
        assert 0 <= x0 < x1 <= rec["width"] and 0 <= y0 < y1 <= rec["height"]
        assert reg["label"] and 0 <= reg["confidence"] <= 1 and reg["source"] == "salient"
        assert 1 <= len(reg["results"]) <= 5
        assert set(reg["results"][0]) == {"item_id", "title", "score", "image_url", "explain"}


def test_large_photo_boxes_in_its_own_pixels(client):
    c, (data, records) = client
    img = Image.open(io.BytesIO(look_png(data, records[0]))).resize((1024, 1536))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    body = _post(c, buf.getvalue(), "big.jpg", "image/jpeg").json()
    assert body["image_width"] == 1024 and body["regions"]
    assert max(reg["box"][2] for reg in body["regions"]) > 320        # mapped back from the working copy


def test_photo_with_nothing_to_shop_is_an_empty_list(client):
    c, _ = client
    r = _post(c, blank_png())
    assert r.status_code == 200 and r.json()["regions"] == []


def test_bad_inputs_are_clear_4xx(client):
    c, (data, records) = client
    tiny = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(tiny, format="PNG")
    r = _post(c, tiny.getvalue())
    assert r.status_code == 400 and "too small" in r.json()["detail"]
    huge = io.BytesIO()
    Image.new("L", (2000, 1500)).save(huge, format="PNG")       # 3 MP > this app's 2 MP cap
    r = _post(c, huge.getvalue())
    assert r.status_code == 400 and "too large" in r.json()["detail"]
    r = _post(c, b"this is not an image", "notes.png")
    assert r.status_code == 400 and "not a recognised image" in r.json()["detail"]
    r = _post(c, b"hello", "notes.txt", "text/plain")
    assert r.status_code == 415 and "content type" in r.json()["detail"]
    assert _post(c, b"").status_code == 400
    r = _post(c, look_png(data, records[0]), top_k=0)
    assert r.status_code == 422 and "top_k" in r.json()["detail"][0]
    r = _post(c, look_png(data, records[0]), color="red")
    assert r.status_code == 422 and "unknown form field" in r.json()["detail"][0]
    assert c.post("/search/look").status_code == 422


def test_upload_cap(tmp_path):
    sd = build_serving_dir(tmp_path)
    with TestClient(create_app(sd, _params(max_upload_mb=0.01), loader=tiny_loader, watch_interval_s=0)) as c:
        r = _post(c, b"\x89PNG" + b"0" * 20_000)
        assert r.status_code == 413
