"""Concurrency: many logins racing for the same links, through the real API over HTTP.

On the real dev server (it enforces Temporal's limits on in-flight updates, the time-skipping
server does not), the app wired as in production (its own Temporal client from the settings),
the production worker wiring in-process.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import pytest

from invites.invitations import handle_for
from invites.models import Status
from tests.support.api import Api, api_for
from tests.support.auth0 import ASSIGN_ROLES, account
from tests.support.stack import Stack
from tests.support.webhooks import assert_unavailable

pytestmark = [pytest.mark.devserver, pytest.mark.slow]

INVITATIONS = 50
USERS_PER_LINK = 4
ALREADY_REDEEMED = {"result": "rejected", "reason": "already_redeemed"}


async def create(api: Api, email: str) -> dict[str, Any]:
    """Create as a funnel does under load: a 503 is retried with the same `external_ref`."""
    body = {"roles": ["customer"], "email_policy": "any", "external_ref": f"ref-{email}"}
    for _ in range(10):
        response = await api.create(email, **body)
        if response.status_code != 503:
            assert response.status_code in (200, 201), response.text
            return response.json()
        assert_unavailable(response)
        await asyncio.sleep(float(response.headers["retry-after"]))
    raise AssertionError(f"create still 503: {response.text}")


async def test_200_concurrent_redeems_over_50_links_accept_exactly_one_user_per_link(dev_stack: Stack):
    """With `email_policy: "any"` the link is the credential: four different accounts log in
    with each of 50 links, all 200 webhooks at once. Exactly one per link is accepted (200) and
    granted; the other three are told `already_redeemed` (409). A 503 with `Retry-After` is
    allowed (Temporal's in-flight update limit, or SQLite's write lock held past its busy
    timeout under the burst) and retried with the very same message until it gets its answer:
    the 503 kept no receipt, so the retry is answered as if first.
    """
    s = dev_stack
    tag = uuid.uuid4().hex[:8]
    async with api_for(s, wired_as_production=True) as api, s.worker():
        emails = [f"race{i}.{tag}@example.com" for i in range(INVITATIONS)]
        created = await asyncio.gather(*(create(api, email) for email in emails))
        handles = [handle_for(s.client, inv["id"]) for inv in created]
        await asyncio.gather(*(s.sent(h) for h in handles))

        links = []  # (invitation, the deliveries of its four logins, their users)
        for inv, email in zip(created, emails, strict=True):
            token = s.links(email)[-1]
            users = [
                account(s.auth0, f"racer{j}.{inv['id'].lower()}@example.org", email_verified=True)
                for j in range(USERS_PER_LINK)
            ]
            links.append((inv, [api.delivery(token, user) for user in users], users))
        everyone = [d for _, deliveries, _ in links for d in deliveries]
        random.Random(7).shuffle(everyone)  # the four logins of one link do not arrive side by side

        first = await asyncio.gather(*(d.send(api.http) for d in everyone))
        assert {r.status_code for r in first} <= {200, 409, 503}, sorted({r.text for r in first})
        await asyncio.gather(*(d.until_final(api.http) for d in everyone))
        async with asyncio.timeout(60):
            finals = await asyncio.gather(*(h.result() for h in handles))

    winners: dict[str, str] = {}  # user id -> the invitation it won
    for (inv, deliveries, users), final in zip(links, finals, strict=True):
        answers = [(d.response.status_code, d.response.json()) for d in deliveries]
        assert sorted(status for status, _ in answers) == [200, 409, 409, 409], answers
        assert [body for status, body in answers if status == 409] == [ALREADY_REDEEMED] * 3
        [(winner, body)] = [(u, b) for u, (status, b) in zip(users, answers, strict=True) if status == 200]
        assert body.items() >= {"result": "accepted", "invitation_id": inv["id"]}.items()
        assert (final.status, final.grant, final.accepted_by) == (Status.ACCEPTED, "done", winner["user_id"])
        winners[winner["user_id"]] = inv["id"]

    # Exactly 50 grants, each to its link's winner and to nobody else; one link row each.
    assert dict(s.auth0.role_assignments) == dict.fromkeys(winners, 1)
    assert s.auth0.faults.count(ASSIGN_ROLES, status=204) == INVITATIONS
    for uid, invitation_id in winners.items():
        assert [link.invitation_id for link in await s.store.links_for_user(uid)] == [invitation_id]
