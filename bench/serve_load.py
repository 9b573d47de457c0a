"""Serving speed of a pushed bundle, through the server's own loader over loopback HTTP (issue 16).

    python -m bench.serve_load --serving-dir serving_dir --seconds 60 --workers 2 --json bench/out/serve_load.json

Starts `serving.app.serve` (uvicorn, `--workers` processes) on a free loopback port, waits for /ready, then
drives `/search/text` with 1 client and with 50 clients (`--clients`) for `--seconds` each (bench.load's async
client) and prints p50/p95/p99, req/s, errors and the resident memory of each worker process. Queries are
seeded 2-4 word combinations of the bundle's own titles (`--distinct` of them), so the query-embedding cache
sees realistic repeats rather than one hot query. With ``--image-data DATA`` (the catalog the bundle was built
from) it then sends `/search/image` one client at a time for ``--seconds``: catalog photos re-encoded as 500-px
JPEGs (``bench.search_stages.photo_jpegs``), and prints the same figures for them.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
import pandas as pd
import psutil

from bench.load import HttpxConnection
from bench.load import run as run_load
from bench.raw_http import RawConnection, multipart


def bundle_queries(serving_dir: Path, n: int, seed: int = 42) -> list[str]:
    """``n`` seeded 2-4 word queries made of words from the pushed bundle's item titles."""
    version = (serving_dir / "LATEST").read_text().strip()
    titles = pd.read_parquet(serving_dir / version / "search" / "items.parquet", columns=["title"])["title"]
    words = [t.lower().split() for t in titles.astype(str) if t.strip()]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        w = rng.choice(words)
        k = min(len(w), rng.randint(2, 4))
        out.append(" ".join(rng.sample(w, k)))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(serving_dir: Path, port: int, workers: int, log_path: Path) -> subprocess.Popen:
    code = (f"from serving.app import serve; serve({str(serving_dir)!r}, host='127.0.0.1', port={port}, "
            f"workers={workers})")
    return subprocess.Popen([sys.executable, "-c", code], stdout=log_path.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_ready(url: str, proc: subprocess.Popen, workers: int, timeout_s: float) -> None:
    """/ready answers 200 from every worker (a request lands on any of them, so ask a few times)."""
    deadline, streak = time.time() + timeout_s, 0
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}; see its log")
        try:
            streak = streak + 1 if httpx.get(url + "/ready", timeout=5).status_code == 200 else 0
        except httpx.HTTPError:
            streak = 0
        if streak >= 4 * workers:
            return
        time.sleep(0.5)
    raise SystemExit(f"server not ready after {timeout_s} s")


def image_run(url: str, jpegs: list[bytes], seconds: float, client: str = "raw") -> dict:
    """One client posting ``jpegs`` in turn to /search/image for ``seconds``: latency percentiles and errors.
    ``client``: ``raw`` (``bench.raw_http``, one keep-alive connection) or ``httpx`` (its AsyncClient), as for text."""
    return asyncio.run(_image_run(url, jpegs, seconds, client))


async def _image_run(url: str, jpegs: list[bytes], seconds: float, client: str) -> dict:
    lat, errors, i = [], 0, 0
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as http:
        parsed = urlparse(url)
        conn = (RawConnection(parsed.hostname or "127.0.0.1", parsed.port or 80, 30.0) if client == "raw"
                else HttpxConnection(http))
        try:
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                body, ctype = multipart({"top_k": "10"}, {"image": ("q.jpg", jpegs[i % len(jpegs)], "image/jpeg")})
                t0 = time.perf_counter()
                r = await conn.request("POST", "/search/image", body, ctype)
                ms = (time.perf_counter() - t0) * 1000
                if r.status_code == 200:
                    lat.append(ms)
                else:
                    errors += 1
                i += 1
        finally:
            if isinstance(conn, RawConnection):
                await conn.close()
    p50, p95, p99 = np.percentile(lat, [50, 95, 99]) if lat else (np.nan,) * 3
    return {"requests": i, "errors": errors, "p50_ms": round(float(p50), 2), "p95_ms": round(float(p95), 2),
            "p99_ms": round(float(p99), 2), "throughput_rps": round(len(lat) / seconds, 1)}


def bundle_processes(proc: subprocess.Popen) -> list[psutil.Process]:
    """The server processes that hold a bundle (the uvicorn workers, or the one process)."""
    parent = psutil.Process(proc.pid)
    procs = [p for p in parent.children(recursive=True) if "multiprocessing.resource_tracker" not in " ".join(p.cmdline())]
    return [p for p in procs if p.memory_info().rss > 200e6] or [parent]


def worker_rss_mb(proc: subprocess.Popen) -> list[float]:
    """Resident memory of each server process that holds a bundle."""
    return [round(p.memory_info().rss / 2**20, 1) for p in bundle_processes(proc)]


def server_cpu_s(proc: subprocess.Popen) -> float:
    """CPU seconds (user + system) spent so far by the server: its parent process and every worker."""
    parent = psutil.Process(proc.pid)
    total = 0.0
    for p in [parent, *parent.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def cpu_per_request(proc: subprocess.Popen, run) -> dict:
    """``run()``'s result with the CPU milliseconds per request of the server and of this load generator (both on
    the same cores), so a throughput figure says how much of the machine the client took."""
    server0, client0 = server_cpu_s(proc), time.process_time()
    r = run()
    server_s, client_s = server_cpu_s(proc) - server0, time.process_time() - client0
    n = max(int(r["requests"]), 1)
    r["cpu_ms_per_request"] = {"server": round(1000 * server_s / n, 2), "load_generator": round(1000 * client_s / n, 2)}
    return r


def worker_rss_split_mb(proc: subprocess.Popen) -> list[dict[str, float]]:
    """Each bundle-holding process's RSS split as /proc/PID/status reports it: ``anon`` (private heap: arrays
    loaded into memory, Python objects) and ``file`` (pages of memory-mapped files: the bundle's FAISS indexes and
    vectors, shared libraries; one copy in the page cache serves every worker)."""
    out = []
    for p in bundle_processes(proc):
        fields = {}
        for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile"):
                fields[key] = int(value.split()[0]) / 1024.0   # kB -> MB
        out.append({"anon": round(fields.get("RssAnon", 0.0), 1), "file": round(fields.get("RssFile", 0.0), 1)})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--serving-dir", type=Path, required=True)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 50])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--distinct", type=int, default=5000, help="distinct queries in the pool")
    ap.add_argument("--ready-timeout", type=float, default=600.0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--client", choices=("httpx", "raw"), default="raw",
                    help="load generator's HTTP client (bench.load): raw (default) takes 0.2-0.4 ms of CPU per request, "
                         "httpx 2-8 ms, taken from the cores the server shares")
    ap.add_argument("--image-data", type=Path, default=None,
                    help="catalog dir of the bundle: also time /search/image with 500-px JPEGs of its photos")
    ap.add_argument("--image-count", type=int, default=200, help="distinct JPEG queries for the image run")
    a = ap.parse_args(argv)
    if not (a.serving_dir / "LATEST").is_file():
        ap.error(f"{a.serving_dir}/LATEST not found")
    queries = bundle_queries(a.serving_dir, a.distinct)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"serve_load-{port}.log"
    proc = start_server(a.serving_dir.resolve(), port, a.workers, log_path)
    results = {"serving_dir": str(a.serving_dir), "workers": a.workers, "cpus": os.cpu_count(), "client": a.client,
               "runs": []}
    try:
        t0 = time.time()
        wait_ready(url, proc, a.workers, a.ready_timeout)
        results["ready_s"] = round(time.time() - t0, 1)
        asyncio.run(run_load(url, 4, 5.0, (1.0, 0.0, 0.0), 7, 30.0, queries, client=a.client))   # warm-up, not reported
        for clients in a.clients:
            r = cpu_per_request(proc, lambda c=clients: asyncio.run(
                run_load(url, c, a.seconds, (1.0, 0.0, 0.0), 42, 30.0, queries, client=a.client)))
            r["rss_mb_per_worker"] = worker_rss_mb(proc)
            r["rss_split_mb_per_worker"] = worker_rss_split_mb(proc)
            results["runs"].append(r)
            o = r["overall"]
            print(f"{clients:3d} clients: {r['requests']} req in {r['wall_s']} s = {r['throughput_rps']} req/s, "
                  f"{r['errors']} errors {r['error_reasons'] or ''}; /search/text ms p50 {o.get('p50_ms')} p95 {o.get('p95_ms')} "
                  f"p99 {o.get('p99_ms')}; RSS MB per worker {r['rss_mb_per_worker']} "
                  f"(anon / file-backed {r['rss_split_mb_per_worker']}); CPU ms per request {r['cpu_ms_per_request']}",
                  flush=True)
        if a.image_data:
            from bench.search_stages import photo_jpegs

            jpegs = photo_jpegs(a.image_data, a.image_count)
            image_run(url, jpegs[:8], 5.0, a.client)                             # warm-up, not reported
            r = results["image"] = cpu_per_request(proc, lambda: image_run(url, jpegs, a.seconds, a.client))
            r["rss_mb_per_worker"] = worker_rss_mb(proc)
            r["rss_split_mb_per_worker"] = worker_rss_split_mb(proc)
            print(f"  1 client, /search/image (500-px JPEG): {r['requests']} req, {r['errors']} errors; ms p50 "
                  f"{r['p50_ms']} p95 {r['p95_ms']} p99 {r['p99_ms']}; RSS MB per worker {r['rss_mb_per_worker']} "
                  f"(anon / file-backed {r['rss_split_mb_per_worker']}); CPU ms per request {r['cpu_ms_per_request']}",
                  flush=True)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(results, indent=2))
    runs = [*results["runs"], *([results["image"]] if "image" in results else [])]
    return 0 if all(r["errors"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
