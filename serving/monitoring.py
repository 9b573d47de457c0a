"""Prometheus metrics and an in-process sliding-window latency monitor.

Each app gets its own CollectorRegistry, so several apps (tests, reload experiments) can live in one
process without duplicate-registration errors.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "LatencyMonitor", "Metrics"]

# Seconds; search latency lives between ~1 ms and a few hundred ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class LatencyMonitor:
    """Thread-safe sliding window over the last `window` request latencies (milliseconds)."""

    def __init__(self, window: int = 2000) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self._values: deque[float] = deque(maxlen=window)
        self._lock = threading.Lock()

    def observe(self, latency_ms: float) -> None:
        with self._lock:
            self._values.append(float(latency_ms))

    def percentiles(self) -> dict[str, float | int | None]:
        """{count, p50_ms, p95_ms, p99_ms} over the window (None when it is empty)."""
        with self._lock:
            values = np.fromiter(self._values, dtype=np.float64, count=len(self._values))
        if values.size == 0:
            return {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None}
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        return {"count": int(values.size), "p50_ms": round(float(p50), 3),
                "p95_ms": round(float(p95), 3), "p99_ms": round(float(p99), 3)}


class Metrics:
    """The Prometheus series the API exports, plus the latency monitor behind /ready."""

    def __init__(self, window: int = 2000) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "pixelmatch_requests_total", "HTTP requests by endpoint, method and status code",
            ["endpoint", "method", "status"], registry=self.registry)
        self.request_latency = Histogram(
            "pixelmatch_request_latency_seconds", "End-to-end request latency by endpoint",
            ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.stage_latency = Histogram(
            "pixelmatch_stage_latency_seconds",
            "Latency of a serving stage (decode_image, search, recommend, feature_store, embed_add, reload)",
            ["stage"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.reloads = Counter(
            "pixelmatch_bundle_reloads_total", "Bundle reload attempts by outcome (swapped, unchanged, refused)",
            ["outcome"], registry=self.registry)
        self.bundle_loaded = Gauge(
            "pixelmatch_bundle_loaded_timestamp_seconds", "Unix time the serving bundle was swapped in",
            registry=self.registry)
        self.live_items = Counter(
            "pixelmatch_live_item_ops_total", "Live catalogue changes through /admin/items",
            ["op"], registry=self.registry)
        self.monitor = LatencyMonitor(window)

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint=endpoint, method=method, status=str(status)).inc()
        self.request_latency.labels(endpoint=endpoint).observe(seconds)
        self.monitor.observe(seconds * 1000.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a block into the per-stage histogram (also when it raises)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.stage_latency.labels(stage=name).observe(time.perf_counter() - t0)

    def render(self) -> bytes:
        return generate_latest(self.registry)


UNMEASURED_PATHS = ("/metrics", "/health", "/static")


class RequestMetrics:
    """ASGI middleware: counts and times every HTTP request by route (``Metrics.observe_request``). A plain ASGI
    wrapper rather than ``@app.middleware("http")``: Starlette's ``BaseHTTPMiddleware`` runs each request in an
    extra task and re-streams the response through memory streams, about a millisecond of a ~10 ms search."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]

        async def send_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        await self.app(scope, receive, send_status)
        endpoint = getattr(scope.get("route"), "path", "unmatched")   # the router sets it on the shared scope
        if endpoint not in UNMEASURED_PATHS:
            self.metrics.observe_request(endpoint, scope["method"], status[0], time.perf_counter() - t0)
