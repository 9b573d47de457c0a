"""The load generator's raw HTTP/1.1 client (bench/raw_http.py) against a real uvicorn server: the same answers as
httpx, keep-alive, chunked bodies, error statuses, and bench.load and bench.serve_load's photo run counting their
requests and errors."""
from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse

from bench.load import run
from bench.raw_http import RawConnection, multipart


def _app() -> FastAPI:
    app = FastAPI()
    seen = {"connections": set()}

    @app.get("/ready")
    def ready() -> dict:
        return {"version": "test"}

    @app.post("/search/text")
    async def text(request: Request) -> JSONResponse:
        seen["connections"].add(request.client.port)
        body = await request.json()
        if body.get("query") == "fail":
            return JSONResponse({"detail": "no"}, status_code=422)
        return JSONResponse({"results": [{"item_id": f"i{j}"} for j in range(body.get("top_k", 10))],
                             "echo": body["query"]})

    @app.post("/search/image")
    async def image(image: UploadFile = File(...), top_k: str = Form(...)) -> dict:
        return {"bytes": len(await image.read()), "top_k": int(top_k)}

    @app.get("/chunked")
    def chunked() -> StreamingResponse:
        return StreamingResponse(iter([b"ab", b"cde", b"f"]), media_type="text/plain")

    @app.get("/connections")
    def connections() -> dict:
        return {"n": len(seen["connections"])}

    return app


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    yield "127.0.0.1", port
    srv.should_exit = True
    thread.join(timeout=10)


def test_raw_client_reads_json_chunked_multipart_and_errors_on_one_connection(server: tuple[str, int]) -> None:
    async def go() -> None:
        conn = RawConnection(*server)
        try:
            r = await conn.request("POST", "/search/text", b'{"query": "red dress", "top_k": 3}')
            assert r.status_code == 200 and r.json() == {"results": [{"item_id": "i0"}, {"item_id": "i1"},
                                                                      {"item_id": "i2"}], "echo": "red dress"}
            assert (await conn.request("POST", "/search/text", b'{"query": "fail"}')).status_code == 422
            chunked = await conn.request("GET", "/chunked")
            assert (chunked.status_code, chunked.content) == (200, b"abcdef")
            body, ctype = multipart({"top_k": "7"}, {"image": ("q.png", b"\x89PNG" + bytes(100), "image/png")})
            assert (await conn.request("POST", "/search/image", body, ctype)).json() == {"bytes": 104, "top_k": 7}
            for _ in range(5):
                await conn.request("POST", "/search/text", b'{"query": "again"}')
            assert (await conn.request("GET", "/connections")).json() == {"n": 1}   # keep-alive: one connection
        finally:
            await conn.close()

    asyncio.run(go())


def test_load_run_with_the_raw_client_counts_requests_and_errors(server: tuple[str, int]) -> None:
    url = f"http://{server[0]}:{server[1]}"
    good = asyncio.run(run(url, 4, 1.0, (1.0, 0.0, 0.0), 42, 10.0, ["red dress", "boots"], client="raw"))
    assert good["client"] == "raw" and good["requests"] > 10 and good["errors"] == 0
    bad = asyncio.run(run(url, 2, 0.5, (1.0, 0.0, 0.0), 42, 10.0, ["fail"], client="raw"))
    assert bad["requests"] > 0 and bad["errors"] == bad["requests"] and set(bad["error_reasons"]) == {"HTTP 422"}
    for client in ("raw", "httpx"):   # both clients send the same requests: text and photo uploads
        mixed = asyncio.run(run(url, 2, 0.5, (0.5, 0.0, 0.5), 42, 10.0, ["red dress"], client=client))
        assert mixed["errors"] == 0 and mixed["by_kind"]["text"]["count"] and mixed["by_kind"]["image"]["count"]
    with pytest.raises(ValueError, match="httpx or raw"):
        asyncio.run(run(url, 1, 0.1, (1.0, 0.0, 0.0), 42, 10.0, client="curl"))


def test_serve_load_image_run_with_either_client(server: tuple[str, int]) -> None:
    """bench.serve_load's /search/image run: photo uploads on one connection, counted, with both clients."""
    from bench.serve_load import image_run

    url = f"http://{server[0]}:{server[1]}"
    for client in ("raw", "httpx"):
        r = image_run(url, [b"\xff\xd8" + bytes(50), b"\xff\xd8" + bytes(80)], 0.5, client)
        assert r["requests"] > 2 and r["errors"] == 0 and r["p95_ms"] >= r["p50_ms"] > 0, (client, r)
