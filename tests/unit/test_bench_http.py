"""The bench's load generator against a real HTTP server on a socket (aiohttp, as the fakes use)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bench.http_client import Connection


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[web.Request]]]:
    seen: list[web.Request] = []

    async def echo(request: web.Request) -> web.Response:
        seen.append(request)
        body = await request.json()
        if body.get("status"):
            return web.json_response({"error": "no"}, status=body["status"])
        if body.get("close"):
            return web.json_response({"bye": True}, headers={"Connection": "close"})
        if body.get("hang_up"):
            assert request.transport is not None
            request.transport.close()
            await asyncio.sleep(1)
        if body.get("empty"):
            return web.Response(status=204)
        return web.json_response({"got": body, "auth": request.headers.get("Authorization")}, status=201)

    app = web.Application()
    app.router.add_post("/v1/things", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_posts_json_on_one_kept_alive_connection(server: tuple[str, list[web.Request]]) -> None:
    url, seen = server
    conn = await Connection.open(url, {"Authorization": "Bearer k"})
    try:
        answers = [await conn.post("/v1/things", {"n": i, "text": "é" * 3000}) for i in range(20)]
    finally:
        conn.close()
    assert answers == [(201, {"got": {"n": i, "text": "é" * 3000}, "auth": "Bearer k"}) for i in range(20)]
    # One TCP connection carried all twenty requests.
    assert len({r.transport for r in seen}) == 1
    assert seen[0].headers["Content-Type"] == "application/json"


async def test_error_statuses_and_empty_answers_are_returned_as_they_are(
    server: tuple[str, list[web.Request]],
) -> None:
    url, _ = server
    conn = await Connection.open(url, {})
    try:
        assert await conn.post("/v1/things", {"status": 409}) == (409, {"error": "no"})
        assert await conn.post("/v1/things", {"empty": True}) == (204, None)
        assert conn.usable
    finally:
        conn.close()


async def test_a_connection_the_server_ends_is_no_longer_usable(
    server: tuple[str, list[web.Request]],
) -> None:
    url, _ = server
    conn = await Connection.open(url, {})
    assert await conn.post("/v1/things", {"close": True}) == (200, {"bye": True})
    assert not conn.usable
    with pytest.raises(RuntimeError, match="closed"):
        await conn.post("/v1/things", {})


async def test_a_hang_up_mid_request_fails_that_request(server: tuple[str, list[web.Request]]) -> None:
    url, _ = server
    conn = await Connection.open(url, {})
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(conn.post("/v1/things", {"hang_up": True}), 5)
    assert not conn.usable


async def test_only_plain_http_addresses_are_taken() -> None:
    with pytest.raises(ValueError, match="plain http"):
        await Connection.open("https://example.com", {})
