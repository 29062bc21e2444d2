"""A burst of webhook redeems on one invitation, beyond Temporal's limit of in-flight updates.

Temporal admits at most 10 in-flight updates per workflow (`history.maxInFlightUpdates`) and
answers the next ones RESOURCE_EXHAUSTED, which the API must turn into 503 + `Retry-After`, never a
500, while the invitation is still granted exactly once. The time-skipping test server does not
enforce the limit (30 concurrent redeems are all admitted there), so these tests run on the real
dev server, the app wired as in production: it builds its own Temporal client from the settings.

The Action waits 5 s per call, so the API never waits for a grant or a busy workflow: a redeem
not accepted within its budget is a 503, and an accepted one whose grant is still running is
answered `grant: "pending"` (invites/invitations.py). The tests show it by the answers that come
back while nothing could have finished the redeem: the grant parked in Auth0, or no worker at all.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.support.api import api_for
from tests.support.auth0 import ASSIGN_ROLES, account
from tests.support.stack import Stack
from tests.support.webhooks import assert_unavailable

pytestmark = pytest.mark.devserver

BURST = 30
RETRIES = 20
ALREADY_REDEEMED = {"result": "rejected", "reason": "already_redeemed"}


async def test_a_burst_by_one_user_while_the_grant_is_blocked_never_500s_and_grants_once(dev_stack: Stack):
    async with api_for(dev_stack, wired_as_production=True) as api, api.stack.worker():
        created, token = await api.pending("burst-same@example.com", roles=["customer"], email_policy="any")
        user = account(api.stack.auth0, "burst-same@example.com", email_verified=True)
        deliveries = [api.delivery(token, user, is_new_user=False) for _ in range(BURST)]
        hold = api.stack.auth0.faults.hold(ASSIGN_ROLES)
        first = await asyncio.gather(*(d.send(api.http) for d in deliveries))
        # Every message is answered while the role assignment is still parked in Auth0.
        hold.release()
        for d in [d for d in deliveries if d.response.status_code == 503]:
            await d.send(api.http)  # the Action's retry: the very same message
        final = await api.stack.handles[-1].result()

    pending = {"result": "accepted", "invitation_id": created["id"], "grant": "pending"}
    for response in first:
        if response.status_code == 503:
            assert_unavailable(response)
        else:
            assert response.status_code == 200, response.text
            assert response.json().items() >= pending.items()
    accepted = {"result": "accepted", "invitation_id": created["id"], "roles": ["customer"]}
    for d in deliveries:
        assert d.response.status_code == 200, d.response.text
        assert d.response.json().items() >= accepted.items()
    assert final.accepted_by == user["user_id"]
    assert dict(api.stack.auth0.role_assignments) == {user["user_id"]: 1}


async def test_a_burst_beyond_the_update_limit_is_answered_503_and_each_retry_gets_its_answer(
    dev_stack: Stack,
):
    async with api_for(dev_stack, wired_as_production=True) as api:
        async with api.stack.worker(keep_open=True):
            created, token = await api.pending(
                "burst-many@example.com", roles=["customer"], email_policy="any"
            )
        users = [
            account(api.stack.auth0, f"burst-{i}@example.com", email_verified=True) for i in range(BURST)
        ]
        deliveries = [api.delivery(token, user, is_new_user=False) for user in users]
        # No worker: the first updates are admitted and wait in flight, the rest are refused.
        first = await asyncio.gather(*(d.send(api.http) for d in deliveries))
        async with api.stack.worker():
            for d in deliveries:
                # The Action's retry: the very same message (updates still in flight from the
                # burst may hold the limit a little longer: the next login's retry then gets it).
                for _ in range(RETRIES):
                    await d.send(api.http)
                    if d.response.status_code != 503:
                        break
                    assert_unavailable(d.response)
                    await asyncio.sleep(0.5)
            final = await api.stack.handles[-1].result()

    for response in first:
        assert_unavailable(response)
    winners = [(d, u) for d, u in zip(deliveries, users, strict=True) if d.response.status_code == 200]
    assert len(winners) == 1, [d.response.status_code for d in deliveries]
    (won, winner) = winners[0]
    assert won.response.json() == {
        "result": "accepted",
        "invitation_id": created["id"],
        "roles": ["customer"],
        "grant": "done",
    }
    for d in deliveries:
        if d is not won:
            assert (d.response.status_code, d.response.json()) == (409, ALREADY_REDEEMED)
    assert final.accepted_by == winner["user_id"]
    assert dict(api.stack.auth0.role_assignments) == {winner["user_id"]: 1}
