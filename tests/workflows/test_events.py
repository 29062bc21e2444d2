"""Events out (the generic CRM bridge): Standard Webhooks-signed POSTs, one per transition."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr
from standardwebhooks import Webhook

from sandbox.server import FakeServer

from .conftest import Stack, _stack, user_payload

SECRET = "whsec_" + "ZXZlbnRzLXNpbmstdGVzdC1zZWNyZXQtMDAwMDAwMDA="


class Receiver:
    """A CRM bridge endpoint: verifies each delivery, fails the first one to force a retry."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[str, dict[str, Any]]] = []
        self.raw_bodies: list[bytes] = []
        self.failures_left = 1

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        payload = Webhook(SECRET).verify(body, dict(request.headers))  # raises on a bad signature
        if self.failures_left:
            self.failures_left -= 1
            return web.Response(status=503)
        self.deliveries.append((request.headers["webhook-id"], payload))
        self.raw_bodies.append(body)
        return web.Response(status=204)


@pytest.fixture
async def events_stack(ts_env, tmp_path):
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/events", receiver.handle)
    async with FakeServer(app) as url:
        overrides = {
            "crm_backend": "webhook",
            "events_url": f"{url}/events",
            "events_secret": SecretStr(SECRET),
        }
        async with _stack(ts_env, tmp_path, overrides) as stack:
            yield stack, receiver


async def test_each_transition_is_delivered_signed_once_and_without_the_token(events_stack):
    stack: Stack
    stack, receiver = events_stack
    async with stack.worker():
        handle = await stack.invite("events@example.com", roles=("customer",))
        await stack.sent(handle)
        stack.auth0.create_user("events@example.com")
        await stack.redeem(handle, user_payload(stack.auth0, "events@example.com"))
        final = await handle.result()
    types = [payload["type"] for _, payload in receiver.deliveries]
    assert types == ["invitation.created", "invitation.sent", "invitation.accepted"]
    ids = [webhook_id for webhook_id, _ in receiver.deliveries]
    assert len(set(ids)) == 3
    assert ids[0] == f"{final.invitation_id}.invitation.created.0"  # the retried first delivery kept its id
    accepted = receiver.deliveries[-1][1]
    assert (accepted["status"], accepted["user_id"]) == ("accepted", final.accepted_by)
    (token,) = stack.links("events@example.com")
    assert all(token.encode() not in body for body in receiver.raw_bodies)
    assert all(json.loads(body)["invitation_id"] == final.invitation_id for body in receiver.raw_bodies)
