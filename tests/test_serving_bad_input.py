"""Untrusted input: every case is a clear 4xx with a message, never a 500, and the server stays up."""
from __future__ import annotations

import io
import struct
import threading
import zlib

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from serving_fixtures import build_serving_dir, png_bytes, tiny_loader

from serving.app import create_app

TOKEN = "bad-input-token"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    serving_dir = build_serving_dir(tmp_path_factory.mktemp("bad"))
    with TestClient(create_app(serving_dir, loader=tiny_loader, watch_interval_s=0),
                    raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(autouse=True)
def still_up(client):
    yield
    assert client.get("/health").status_code == 200
    assert client.post("/search/text", json={"query": "red dress"}).status_code == 200


def _detail(r) -> str:
    return str(r.json()["detail"])


def _upload(client, data: bytes, ctype: str = "image/png", **fields):
    return client.post("/search/image", files={"image": ("x.png", data, ctype)}, data={"top_k": "5", **fields})


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature + IHDR claiming width x height, with a tiny IDAT: a decompression bomb header."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_non_image_file(client):
    r = _upload(client, b"%PDF-1.4 this is not an image at all", "image/png")
    assert r.status_code == 400 and "not a recognised image" in _detail(r)


def test_truncated_jpeg(client):
    buf = io.BytesIO()
    Image.new("RGB", (256, 256), (200, 30, 40)).save(buf, format="JPEG")
    r = _upload(client, buf.getvalue()[: len(buf.getvalue()) // 2], "image/jpeg")
    assert r.status_code == 400 and "truncated" in _detail(r)


def test_decompression_bomb_header(client):
    r = _upload(client, _png_header_only(20000, 20000))
    assert r.status_code == 400 and "too large" in _detail(r)


def test_zero_byte_file(client):
    r = _upload(client, b"")
    assert r.status_code == 400 and "empty" in _detail(r)


def test_upload_over_limit_is_413(client):
    r = _upload(client, png_bytes() + b"\x00" * (10 * 1024 * 1024 + 1))
    assert r.status_code == 413 and "MB" in _detail(r)


def test_wrong_content_type(client):
    r = _upload(client, png_bytes(), "text/plain")
    assert r.status_code == 415 and "content type" in _detail(r)


def test_json_endpoint_with_form_body(client):
    r = client.post("/search/text", content=b"query=red", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 422


@pytest.mark.parametrize("query", ["", "   \t\n "])
def test_empty_or_whitespace_query(client, query):
    r = client.post("/search/text", json={"query": query})
    assert r.status_code == 422 and "non-whitespace" in _detail(r)


def test_ten_thousand_char_query_is_truncated(client):
    r = client.post("/search/text", json={"query": "red dress " * 1000})
    assert r.status_code == 200 and r.json()["query_truncated"] is True and r.json()["results"]


def test_unicode_emoji_query(client):
    r = client.post("/search/text", json={"query": "👗✨ красное платье 赤いドレス"})
    assert r.status_code == 200 and r.json()["query_truncated"] is False


@pytest.mark.parametrize("top_k", [0, -1, 10**6, "abc", 2.5, None])
def test_bad_top_k_text(client, top_k):
    r = client.post("/search/text", json={"query": "red", "top_k": top_k})
    assert r.status_code == 422 and "top_k" in _detail(r)


@pytest.mark.parametrize("top_k", ["0", "-1", "1000000", "abc"])
def test_bad_top_k_query_and_form(client, top_k):
    assert client.get(f"/similar/i0000?top_k={top_k}").status_code == 422
    assert client.get(f"/recommend/u0001?top_k={top_k}").status_code == 422
    assert _upload(client, png_bytes(), top_k=top_k).status_code == 422


def test_unknown_item_and_user(client):
    assert client.get("/items/nope").status_code == 404
    assert client.get("/similar/nope").status_code == 404
    r = client.get("/recommend/nobody-like-this")
    assert r.status_code == 200 and r.json()["fallback"] == "cold_user"


def test_malformed_json(client):
    r = client.post("/search/text", content=b'{"query": "red", ', headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "JSON" in _detail(r)


def test_unknown_filter_key(client):
    r = client.post("/search/text", json={"query": "red", "filters": {"colour": "red"}})
    assert r.status_code == 422 and "colour" in _detail(r)
    r = _upload(client, png_bytes(), colour="red")
    assert r.status_code == 422 and "colour" in _detail(r)


def test_unknown_top_level_key(client):
    r = client.post("/search/text", json={"query": "red", "topk": 5})
    assert r.status_code == 422 and "topk" in _detail(r)


def test_price_min_above_price_max(client):
    r = client.post("/search/text", json={"query": "red", "filters": {"price_min": 50, "price_max": 10}})
    assert r.status_code == 422 and "price_min" in _detail(r)
    r = _upload(client, png_bytes(), price_min="50", price_max="10")
    assert r.status_code == 422 and "price_min" in _detail(r)


@pytest.mark.parametrize("weight", ["-0.1", "1.5", "abc"])
def test_image_weight_out_of_range(client, weight):
    r = client.post("/search/multimodal", files={"image": ("x.png", png_bytes(), "image/png")},
                    data={"text": "red dress", "image_weight": weight})
    assert r.status_code == 422 and "image_weight" in _detail(r)


def test_multimodal_blank_text(client):
    r = client.post("/search/multimodal", files={"image": ("x.png", png_bytes(), "image/png")},
                    data={"text": "  ", "image_weight": "0.5"})
    assert r.status_code == 422


def test_bad_admin_item_image(client, monkeypatch):
    monkeypatch.setenv("PIXELMATCH_ADMIN_TOKEN", TOKEN)
    h = {"Authorization": f"Bearer {TOKEN}"}
    r = client.post("/admin/items", json={"items": [{"item_id": "b1", "title": "t", "image_base64": "!!notbase64"}]}, headers=h)
    assert r.status_code == 400 and "base64" in _detail(r)
    r = client.post("/admin/items", json={"items": [{"item_id": "../etc/passwd", "title": "t"}]}, headers=h)
    assert r.status_code == 422
    r = client.post("/admin/items", json={"items": []}, headers=h)
    assert r.status_code == 422


def test_concurrent_reloads_are_serialised(client, monkeypatch):
    monkeypatch.setenv("PIXELMATCH_ADMIN_TOKEN", TOKEN)
    h = {"Authorization": f"Bearer {TOKEN}"}
    codes: list[int] = []

    def hit() -> None:
        codes.append(client.post("/admin/reload?force=true", headers=h).status_code)

    threads = [threading.Thread(target=hit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 4
    assert client.get("/ready").json()["version"] == "v1"


def test_top_k_bound_comes_from_params_and_shows_in_openapi(tmp_path):
    """serving.top_k_max is the one bound, carried by the declared top_k of every route (body, query and form)."""
    from modules.config import load_params

    params = load_params()
    params["serving"]["top_k_max"] = 7
    with TestClient(create_app(build_serving_dir(tmp_path), params, loader=tiny_loader, watch_interval_s=0)) as c:
        msg = ["top_k: must be between 1 and 7, got 8"]
        assert c.post("/search/text", json={"query": "red", "top_k": 8}).json()["detail"] == msg
        assert c.get("/similar/i0000?top_k=8").json()["detail"] == msg
        assert c.get("/recommend/u0001?top_k=8").json()["detail"] == msg
        assert _upload(c, png_bytes(), top_k="8").json()["detail"] == msg
        assert c.post("/search/look", files={"image": ("x.png", png_bytes(), "image/png")},
                      data={"top_k": "8"}).json()["detail"] == msg
        assert c.get("/recommend/u0001?top_k=7").status_code == 200
        spec = c.get("/openapi.json").json()
    assert {"/search/text", "/search/image", "/search/multimodal", "/search/look", "/similar/{item_id}",
            "/recommend/{user_id}", "/items/{item_id}", "/items/{item_id}/image", "/health", "/ready", "/metrics",
            "/admin/reload", "/admin/items", "/admin/items/{item_id}", "/events"} == set(spec["paths"])
    similar = spec["paths"]["/similar/{item_id}"]["get"]["parameters"]
    assert next(p for p in similar if p["name"] == "top_k")["schema"]["maximum"] == 7
    assert spec["components"]["schemas"]["TextSearchRequest"]["properties"]["top_k"]["maximum"] == 7
    assert spec["components"]["schemas"]["RecommendResponseOut"]["properties"]["items"]["deprecated"] is True
