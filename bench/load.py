"""Bounded loopback load generator for a running PixelMatch server.

    python -m bench.load --url http://127.0.0.1:8000 --clients 50 --duration 60 --json bench/load_result.json

Each of `--clients` concurrent clients loops for `--duration` seconds over a mixed workload
(text search 70 %, "more like this" 20 %, image search 10 %, weights configurable) and stops by itself.
Only loopback URLs are accepted. Prints p50/p95/p99 latency (client side, ms), throughput and the error
count (non-2xx or transport errors); `--json` writes the same summary.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
from PIL import Image

from bench.raw_http import RawConnection, RawHttpError, multipart

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
QUERIES = [
    "red dress", "black leather boots", "blue denim jeans for men", "floral summer dress", "white sneakers",
    "leather backpack", "striped shirt", "wool jacket women", "cheap watch under 50", "green cotton t-shirt",
    "yellow handbag", "desk lamp", "sandals", "navy polka dot dress", "brown boots size", "grey hoodie",
]


def _photo(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    arr = np.full((96, 96, 3), 240, np.uint8)
    arr[20:76, 24:72] = rng.integers(0, 255, 3, dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


class HttpxConnection:
    """httpx's AsyncClient behind ``RawConnection.request``'s signature, so a request is built one way for both."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def request(self, method: str, path: str, body: bytes = b"",
                      content_type: str = "application/json") -> httpx.Response:
        return await self.http.request(method, path, content=body or None,
                                       headers={"content-type": content_type} if body else None)


async def _send(conn: HttpxConnection | RawConnection, kind: str, rng: random.Random, photos: list[bytes],
                item_ids: list[str], queries: list[str] | None) -> tuple[str, int]:
    """One request of ``kind`` on ``conn`` (httpx or the raw client): (the kind actually sent, HTTP status)."""
    if kind == "text":
        body = json.dumps({"query": rng.choice(queries or QUERIES), "top_k": 10}).encode()
        return kind, (await conn.request("POST", "/search/text", body)).status_code
    if kind == "similar" and item_ids:
        return kind, (await conn.request("GET", f"/similar/{rng.choice(item_ids)}?top_k=10")).status_code
    body, ctype = multipart({"top_k": "10"}, {"image": ("q.png", rng.choice(photos), "image/png")})
    return "image", (await conn.request("POST", "/search/image", body, ctype)).status_code


async def _client_loop(cid: int, conn: HttpxConnection | RawConnection, deadline: float,
                       weights: tuple[float, float, float], seed: int, item_ids: list[str],
                       out: list[tuple[str, float, bool, str]], queries: list[str] | None = None) -> None:
    rng = random.Random(seed + cid)
    photos = [_photo(seed + cid * 10 + i) for i in range(3)]
    while time.perf_counter() < deadline:
        kind = rng.choices(("text", "similar", "image"), weights=weights)[0]
        t0 = time.perf_counter()
        try:
            kind, status = await _send(conn, kind, rng, photos, item_ids, queries)
            ok = 200 <= status < 300
            why = "" if ok else f"HTTP {status}"
        except (httpx.HTTPError, RawHttpError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
            ok, why = False, type(exc).__name__
        out.append((kind, (time.perf_counter() - t0) * 1000.0, ok, why))


def _summary(samples: list[tuple[str, float, bool, str]], wall_s: float) -> dict:
    def stats(lat: list[float]) -> dict:
        if not lat:
            return {"count": 0}
        p50, p95, p99 = np.percentile(lat, [50, 95, 99])
        return {"count": len(lat), "p50_ms": round(float(p50), 2), "p95_ms": round(float(p95), 2),
                "p99_ms": round(float(p99), 2), "mean_ms": round(float(np.mean(lat)), 2)}

    ok_lat = [ms for _, ms, ok, _ in samples if ok]
    reasons: dict[str, int] = {}
    for *_, ok, why in samples:
        if not ok:
            reasons[why] = reasons.get(why, 0) + 1
    return {
        "requests": len(samples), "errors": sum(not ok for _, _, ok, _ in samples), "error_reasons": reasons,
        "wall_s": round(wall_s, 2),
        "throughput_rps": round(len(samples) / wall_s, 2) if wall_s > 0 else 0.0, "overall": stats(ok_lat),
        "by_kind": {k: stats([ms for kind, ms, ok, _ in samples if ok and kind == k]) for k in ("text", "similar", "image")},
    }


async def run(url: str, clients: int, duration_s: float, weights: tuple[float, float, float], seed: int,
              timeout_s: float, queries: list[str] | None = None, client: str = "raw") -> dict:
    """``clients`` concurrent loops for ``duration_s``; ``client``: ``httpx`` (AsyncClient) or ``raw``
    (``bench.raw_http``: one keep-alive connection per client, a fraction of httpx's CPU per request)."""
    if client not in ("httpx", "raw"):
        raise ValueError(f"client must be httpx or raw, got {client!r}")
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits) as http:
        try:
            ready = await http.get("/ready")
        except httpx.HTTPError as exc:
            raise SystemExit(f"server at {url} is unreachable ({exc}); start it with `make serve`") from exc
        if ready.status_code != 200:
            raise SystemExit(f"server at {url} is not ready: {ready.status_code} {ready.text[:200]}")
        seedr = await http.post("/search/text", json={"query": "dress", "top_k": 50})
        item_ids = [x["item_id"] for x in seedr.json().get("results", [])]
        parsed = urlparse(url)
        conns = ([RawConnection(parsed.hostname or "127.0.0.1", parsed.port or 80, timeout_s) for _ in range(clients)]
                 if client == "raw" else [HttpxConnection(http)] * clients)
        samples: list[tuple[str, float, bool, str]] = []
        t0 = time.perf_counter()
        deadline = t0 + duration_s
        try:
            await asyncio.gather(*(_client_loop(i, conns[i], deadline, weights, seed, item_ids, samples, queries)
                                   for i in range(clients)))
        finally:
            for c in conns:
                if isinstance(c, RawConnection):
                    await c.close()
        result = _summary(samples, time.perf_counter() - t0)
        result.update({"url": url, "clients": clients, "duration_s": duration_s, "client": client,
                       "mix": dict(zip(("text", "similar", "image"), weights, strict=True)),
                       "bundle_version": ready.json().get("version")})
        return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds (bounded: at most 600)")
    ap.add_argument("--mix", default="0.7,0.2,0.1", help="weights text,similar,image")
    ap.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, seconds")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--json", type=Path, default=None, help="also write the summary here")
    ap.add_argument("--client", choices=("httpx", "raw"), default="raw",
                    help="raw (default): one keep-alive HTTP/1.1 connection per client, 0.2-0.4 ms of CPU per "
                         "request; httpx: its AsyncClient (2-8 ms per request, docs/benchmark_results.md)")
    a = ap.parse_args(argv)
    host = urlparse(a.url).hostname
    if host not in LOOPBACK:
        ap.error(f"refusing to load-test {host!r}: loopback only ({', '.join(sorted(LOOPBACK))})")
    if not 1 <= a.clients <= 500:
        ap.error("--clients must be within 1..500")
    if not 0 < a.duration <= 600:
        ap.error("--duration must be within (0, 600] seconds")
    weights = tuple(float(w) for w in a.mix.split(","))
    if len(weights) != 3 or min(weights) < 0 or sum(weights) <= 0:
        ap.error("--mix needs three non-negative weights text,similar,image")
    result = asyncio.run(run(a.url, a.clients, a.duration, weights, a.seed, a.timeout, client=a.client))
    o = result["overall"]
    print(f"{result['requests']} requests in {result['wall_s']} s ({result['throughput_rps']} req/s), "
          f"{result['errors']} errors, {a.clients} clients, bundle {result['bundle_version']}")
    if o.get("count"):
        print(f"latency ms: p50 {o['p50_ms']}  p95 {o['p95_ms']}  p99 {o['p99_ms']}  mean {o['mean_ms']}")
    for kind, s in result["by_kind"].items():
        if s.get("count"):
            print(f"  {kind:8s} n={s['count']:6d}  p50 {s['p50_ms']:8.2f}  p95 {s['p95_ms']:8.2f}  p99 {s['p99_ms']:8.2f}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(result, indent=2))
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
