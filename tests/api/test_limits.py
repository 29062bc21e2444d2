"""What an unknown caller can make the API do: bodies capped before they are read, and per-client
rate limits on opening links and on failed authentications (api/limits.py), over HTTP."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from invites.ids import new_invitation_id
from tests.support.api import Api
from tests.support.webhooks import WEBHOOK

# The test server trusts 127.0.0.1 as a proxy (uvicorn's default), so X-Forwarded-For names the
# client, as a reverse proxy listed in INVITES_TRUSTED_PROXIES would.
READ = f"/v1/invitations/{new_invitation_id()}"  # an authenticated read: 404 once let in
MALLORY, ADA = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "198.51.100.2"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"rate_limit_links": "5/minute", "rate_limit_auth_failures": "3/minute"}


async def _raw(api: Api, head: bytes, chunks: list[bytes]) -> tuple[bytes, bytes]:
    """Send a request by hand, as a client that keeps sending would; the server's first answer."""
    host, port = api.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head)
        for chunk in chunks:
            writer.write(chunk)
        await writer.drain()
        async with asyncio.timeout(10):  # only so that a server waiting for the body fails the test
            answer = await reader.readuntil(b"\r\n\r\n")
            body = await reader.read(1000)
    finally:
        writer.close()
    return answer, body


async def test_an_unauthenticated_body_over_the_cap_is_refused_before_it_is_read(api: Api):
    """The server answers 413 on the declared length alone: the 200 MiB are never sent."""
    head, body = await _raw(
        api,
        b"POST /v1/webhooks/auth0 HTTP/1.1\r\nHost: invites\r\nContent-Type: application/json\r\n"
        b"Content-Length: 209715200\r\n\r\n{",
        [],
    )
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(body)["error"]["code"] == "too_large"


async def test_a_streamed_body_is_cut_off_at_the_cap(api: Api):
    """No Content-Length: the body is counted as it comes, and refused once past 128 KiB."""
    chunk = b"x" * 16384
    head, body = await _raw(
        api,
        b"POST /v1/invitations HTTP/1.1\r\nHost: invites\r\nContent-Type: application/json\r\n"
        b"X-API-Key: dev-api-key\r\nTransfer-Encoding: chunked\r\n\r\n",
        [b"4000\r\n" + chunk + b"\r\n" for _ in range(16)],  # 256 KiB
    )
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(body)["error"]["code"] == "too_large"
    # Under the cap the same route works.
    assert (await api.create("capped@example.com")).status_code == 201


async def test_opening_links_past_the_limit_is_429_for_that_client_only(api: Api):
    _, token = await api.pending("links@example.com")
    for _ in range(5):
        assert (await api.http.get(f"/i/{token}", headers=MALLORY)).status_code == 302
    limited = await api.http.get(f"/i/{token}", headers=MALLORY)
    assert (limited.status_code, limited.json()["error"]["code"]) == (429, "rate_limited")
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert (await api.http.get(f"/i/{token}", headers=ADA)).status_code == 302


async def test_failed_authentications_past_the_limit_lock_out_that_client_only(api: Api):
    wrong = {**MALLORY, "Authorization": "Bearer not-a-key-at-all"}
    for _ in range(3):
        assert (await api.http.get(READ, headers=wrong)).status_code == 401
    # Now even a good key from that address waits: guessing keys costs the guesser.
    locked = await api.http.get(READ, headers={**MALLORY, **api.key})
    assert (locked.status_code, locked.json()["error"]["code"]) == (429, "rate_limited")
    assert int(locked.headers["retry-after"]) >= 1
    assert (await api.http.get(READ, headers={**ADA, **api.key})).status_code == 404


async def test_badly_signed_webhooks_count_as_failed_authentications(api: Api):
    body = json.dumps({"type": "invitation.redeem"})
    for _ in range(3):
        refused = await api.http.post(WEBHOOK, content=body, headers=MALLORY)
        assert refused.status_code == 401
    assert (await api.http.post(WEBHOOK, content=body, headers=MALLORY)).status_code == 429


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_auth_failures": "2/second"}])
async def test_a_limited_client_is_served_again_once_the_window_moves_on(api: Api):
    wrong = {**MALLORY, "Authorization": "Bearer not-a-key-at-all"}
    for _ in range(2):
        assert (await api.http.get(READ, headers=wrong)).status_code == 401
    assert (await api.http.get(READ, headers={**MALLORY, **api.key})).status_code == 429
    await asyncio.sleep(1.1)  # the one-second window passes
    assert (await api.http.get(READ, headers={**MALLORY, **api.key})).status_code == 404
