"""One ASGI middleware in front of the whole API (issue 17).

For every HTTP request, before any route, form or JSON parser runs:
  1. `/admin/*`: the bearer token is checked first (403 when the server has none, 401 when wrong), so an
     unauthenticated client cannot make the server read, parse or validate an admin body;
  2. the body is read here, counting the bytes actually received (a lying Content-Length or a chunked
     body counts the same), and refused with 413 past the path's limit; a valid body is replayed to the app;
  3. every response gets `nosniff`, a Content-Security-Policy, `X-Frame-Options` and `Referrer-Policy`.
"""
from __future__ import annotations

import hmac
import json
import os
from collections.abc import Callable
from typing import Any

from starlette.datastructures import Headers

CSP = ("default-src 'self'; img-src 'self' data: blob:; object-src 'none'; frame-ancestors 'none'; "
       "base-uri 'none'; form-action 'self'")
# FastAPI's /docs and /redoc pages load Swagger UI / ReDoc from a CDN with an inline bootstrap script.
DOCS_CSP = ("default-src 'self' https://cdn.jsdelivr.net; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https:; "
            "worker-src blob:; object-src 'none'; frame-ancestors 'none'")
DOCS_PATHS = ("/docs", "/redoc")


def admin_problem(headers: Headers) -> tuple[int, str] | None:
    """None when the request carries the admin token, else (status, message)."""
    token = os.environ.get("PIXELMATCH_ADMIN_TOKEN", "")
    if not token:
        return 403, "admin API disabled: set PIXELMATCH_ADMIN_TOKEN on the server"
    scheme, _, given = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        return 401, "missing or wrong bearer token"
    return None


class RequestGuard:
    def __init__(self, app: Any, limits: dict[str, int], default_limit: int,
                 on_reject: Callable[[str, int], None] | None = None) -> None:
        """`limits`: path -> max body bytes; any other path gets `default_limit`."""
        self.app = app
        self.limits = limits
        self.default_limit = default_limit
        self.on_reject = on_reject

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        csp = DOCS_CSP if path.startswith(DOCS_PATHS) else CSP

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"x-content-type-options", b"nosniff"), (b"content-security-policy", csp.encode()),
                         (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer")]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        headers = Headers(scope=scope)
        if path.startswith("/admin/"):
            problem = admin_problem(headers)
            if problem is not None:
                auth = [(b"www-authenticate", b"Bearer")] if problem[0] == 401 else []
                await self._reply(send_with_headers, path, problem[0], problem[1], auth)
                return
        limit = self.limits.get(path, self.default_limit)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await self._reply(send_with_headers, path, 413, _too_large(limit))
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return                                   # the client is gone: nothing to answer
            body += message.get("body", b"")
            if len(body) > limit:
                await self._reply(send_with_headers, path, 413, _too_large(limit))
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send_with_headers)

    async def _reply(self, send: Callable, path: str, status: int, detail: str,
                     extra: list[tuple[bytes, bytes]] | None = None) -> None:
        if self.on_reject is not None:
            self.on_reject(path, status)
        payload = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode()), *(extra or [])]})
        await send({"type": "http.response.body", "body": payload})


def _too_large(limit: int) -> str:
    return f"request body too large: the limit for this endpoint is {limit / 1024 / 1024:.2f} MB"
