"""Events out (the generic CRM bridge): Standard Webhooks-signed POSTs, one per transition."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr
from standardwebhooks import Webhook
from temporalio.api.enums.v1 import EventType

from sandbox.server import FakeServer
from tests.support.auth0 import user_payload
from tests.support.stack import Stack, open_stack

SECRET = "whsec_" + "ZXZlbnRzLXNpbmstdGVzdC1zZWNyZXQtMDAwMDAwMDA="


class Receiver:
    """A CRM bridge endpoint: verifies each delivery, fails the first one to force a retry.

    `down`: every delivery answers 503 (an outage); `refused`: event types answered 400 (a
    delivery the sink rejects for good)."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[str, dict[str, Any]]] = []
        self.raw_bodies: list[bytes] = []
        self.failures_left = 1
        self.down = False
        self.refused: set[str] = set()
        self.attempts = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        payload = Webhook(SECRET).verify(body, dict(request.headers))  # raises on a bad signature
        self.attempts += 1
        if self.failures_left or self.down:
            self.failures_left = max(0, self.failures_left - 1)
            return web.Response(status=503)
        if payload["type"] in self.refused:
            return web.Response(status=400)
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
        async with open_stack(ts_env, tmp_path, overrides) as stack:
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


async def test_a_crm_outage_holds_neither_the_mail_nor_the_grant_and_the_events_follow_in_order(events_stack):
    """Events are published aside: with the sink down from the start, the invitation mail still
    goes out and the login is still granted; once the sink is back, every transition arrives,
    once each, in the order it happened, and only then does the run end."""
    stack: Stack
    stack, receiver = events_stack
    receiver.down = True
    async with stack.worker():
        handle = await stack.invite("outage@example.com", roles=("customer",))
        await stack.sent(handle)
        stack.auth0.create_user("outage@example.com")
        accepted = await stack.redeem(handle, user_payload(stack.auth0, "outage@example.com"))
        assert accepted.result == "accepted"
        state = await stack.until(handle, lambda s: s.grant == "done")
        assert stack.auth0.role_names(state.accepted_by) == ["customer"]
        assert receiver.deliveries == [] and receiver.attempts >= 1
        description = await handle.describe()
        assert [a.activity_type.name for a in description.raw_description.pending_activities] == [
            "publish_event"
        ]

        receiver.down = False
        final = await handle.result()
    assert (final.status, final.grant) == ("accepted", "done")
    types = [payload["type"] for _, payload in receiver.deliveries]
    assert types == ["invitation.created", "invitation.sent", "invitation.accepted"]


async def test_an_event_the_crm_refuses_for_good_is_skipped_and_the_invitation_goes_on(events_stack):
    stack: Stack
    stack, receiver = events_stack
    receiver.refused = {"invitation.sent"}
    async with stack.worker():
        handle = await stack.invite("refused@example.com", roles=("customer",))
        await stack.sent(handle)
        stack.auth0.create_user("refused@example.com")
        await stack.redeem(handle, user_payload(stack.auth0, "refused@example.com"))
        final = await handle.result()
    assert (final.status, final.grant) == ("accepted", "done")
    types = [payload["type"] for _, payload in receiver.deliveries]
    assert types == ["invitation.created", "invitation.accepted"]
    failed = [
        e.activity_task_failed_event_attributes.failure.application_failure_info
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]
    assert [(f.type, f.non_retryable) for f in failed] == [("EventsWebhookRejected", True)]
