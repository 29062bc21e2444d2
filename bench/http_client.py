"""The bench's HTTP load generator: keep-alive HTTP/1.1 connections parsed by httptools.

On a small machine the load generator shares the cores with the server it measures, and the
raw starts it is compared with go through the SDK's Rust client, which costs the bench process
next to nothing. A request written as bytes on a kept-alive connection, with the response read
by the same parser uvicorn uses, costs a fraction of the CPU a general HTTP client spends on it,
so the comparison is about the service, not the load generator.

One `Connection` carries one request at a time (no pipelining), as one lane of the load does.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import httptools


class Connection(asyncio.Protocol):
    """A kept-alive HTTP/1.1 connection to one server; `post` sends one request and reads its answer."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self._head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", **headers}.items())
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._answer: asyncio.Future[tuple[int, bytes]] | None = None
        self._body = bytearray()

    @classmethod
    async def open(cls, url: str, headers: dict[str, str]) -> Connection:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the load generator speaks plain http only, not {url!r}")
        conn = cls(parts.hostname, parts.port or 80, headers)
        await asyncio.get_running_loop().create_connection(lambda: conn, conn.host, conn.port)
        return conn

    @property
    def usable(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        """POST `body` as JSON; the status and the decoded JSON answer (None when empty)."""
        if not self.usable or self._answer is not None:
            raise RuntimeError("the connection is closed or busy")
        data = json.dumps(body, separators=(",", ":")).encode()
        head = (
            f"POST {path} HTTP/1.1\r\n{self._head}Content-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        self._answer = asyncio.get_running_loop().create_future()
        self._transport.write(head.encode() + data)
        try:
            status, raw = await self._answer
        finally:
            self._answer = None
        return status, json.loads(raw) if raw else None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"unparsable HTTP answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError("the server closed the connection") if exc is None else exc)
        self._transport = None

    # httptools callbacks

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        status, raw = self._parser.get_status_code(), bytes(self._body)
        self._body.clear()
        if self._answer is not None and not self._answer.done():
            self._answer.set_result((status, raw))
        if not self._parser.should_keep_alive():
            self.close()

    def _fail(self, exc: Exception) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(exc)
        if self._transport is not None:
            self._transport.close()
