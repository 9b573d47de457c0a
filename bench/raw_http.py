"""A minimal HTTP/1.1 keep-alive client over asyncio streams, for the load generator (``bench.load --client raw``).

httpx's AsyncClient spends about as much CPU per request as the server's HTTP layer does; on a 2-core machine where
the load generator shares the cores with the server, that CPU is taken from the server being measured. This client
writes the request bytes itself and reads the status line, the headers and a ``Content-Length`` or chunked body:
enough for PixelMatch's JSON answers, nothing more (no TLS, no redirects, no proxies, loopback only).
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass


class RawHttpError(Exception):
    """The connection broke or the answer was not HTTP/1.1 the way this client reads it."""


@dataclass
class RawResponse:
    status_code: int
    content: bytes

    def json(self) -> object:
        return json.loads(self.content)


class RawConnection:
    """One keep-alive connection; ``request`` reconnects once when the server closed an idle one."""

    def __init__(self, host: str, port: int, timeout_s: float = 30.0) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass
        self._reader = self._writer = None

    async def request(self, method: str, path: str, body: bytes = b"",
                      content_type: str = "application/json") -> RawResponse:
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Length: {len(body)}\r\n"
                + (f"Content-Type: {content_type}\r\n" if body else "") + "\r\n").encode("latin-1")
        for attempt in (0, 1):
            fresh = self._writer is None
            if fresh:
                self._reader, self._writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), self.timeout_s)
            try:
                self._writer.write(head + body)
                return await asyncio.wait_for(self._read_response(), self.timeout_s)
            except (ConnectionError, asyncio.IncompleteReadError, RawHttpError):
                await self.close()
                if fresh or attempt:   # a new connection that fails is an error; an idle one gets one retry
                    raise
        raise RawHttpError("unreachable")

    async def _read_response(self) -> RawResponse:
        assert self._reader is not None
        raw = await self._reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise RawHttpError(f"bad status line {lines[0]!r}")
        headers = {}
        for line in lines[1:]:
            if line:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            content = await self._read_chunked()
        else:
            content = await self._reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return RawResponse(int(parts[1]), content)

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        out = bytearray()
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")   # the empty trailer
                return bytes(out)
            out += await self._reader.readexactly(size)
            await self._reader.readexactly(2)


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]],
              boundary: str = "pixelmatchload") -> tuple[bytes, str]:
    """A multipart/form-data body and its content type (what /search/image takes)."""
    out = bytearray()
    for name, value in fields.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").encode()
    for name, (filename, data, ctype) in files.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
                f"Content-Type: {ctype}\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"
