"""Dependency outages: Auth0 rate-limiting for ten minutes, PostgreSQL unreachable for a while.

Both on the time-skipping server, the API over real HTTP and the production worker wiring
in-process: minutes of outage pass in seconds, and the workflows see exactly that much time.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from invites.db.engine import create_engine
from invites.ids import invitation_id_for_ref
from invites.invitations import handle_for
from invites.models import InvitationState, Status
from tests.support.api import api_for
from tests.support.auth0 import account, user_payload
from tests.support.postgres import ProxiedDatabase
from tests.support.stack import open_stack
from tests.support.temporal import ServerClock
from tests.support.webhooks import assert_unavailable
from workflows.invitation import AUTH0_RETRY

OUTAGE = timedelta(minutes=10)
RETRY_AFTER_S = 120
INVITATIONS = 5
# The grant (workflow version 4: one activity), and the Auth0 calls each of its attempts starts
# side by side, each refused at once during the outage: the roles' read and the profile's read.
GRANT = "grant_access"
FIRST_CALLS_PER_ATTEMPT = 2


async def completed_attempts(handle: WorkflowHandle[Any, Any]) -> dict[str, tuple[int, datetime]]:
    """Per activity type, the attempt number and start time of its completed attempt (history)."""
    names: dict[int, str] = {}
    done: dict[str, tuple[int, datetime]] = {}
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            names[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            started = event.event_time.ToDatetime().replace(tzinfo=UTC)
            done[names[attrs.scheduled_event_id]] = (attrs.attempt, started)
    return done


@pytest.mark.slow
async def test_auth0_rate_limiting_for_ten_minutes_loses_no_redemption(
    ts_env: WorkflowEnvironment, tmp_path: Path
):
    """Every Management API call answers 429 + `Retry-After: 120` for ten minutes of workflow
    time: the webhook still accepts at once (`grant: "pending"`), each grant waits the delay
    Auth0 names between attempts, and all complete once Auth0 recovers, each role granted once.

    The outage is measured on the server's clock: the Auth0 fake's fault window uses a
    `ServerClock`, the time the workflows see, so "ten minutes" is ten minutes of retries,
    however fast the test server skips through them.
    """
    async with open_stack(ts_env, tmp_path, {}) as stack, api_for(stack, clock=stack.now) as api:
        clock = ServerClock(stack.env)
        stack.auth0.faults.clock = clock
        async with stack.worker():
            emails = [f"limited{i}@example.com" for i in range(INVITATIONS)]
            created = [await api.created(email, roles=["customer"]) for email in emails]
            await asyncio.gather(*(stack.sent(h) for h in stack.handles))
            users = [account(stack.auth0, email, email_verified=True) for email in emails]

            outage_ends = await clock.now() + OUTAGE.total_seconds()
            stack.auth0.faults.status(
                "*", 429, headers={"Retry-After": str(RETRY_AFTER_S)}, until=outage_ends
            )
            tokens = [stack.links(email)[-1] for email in emails]
            during = await asyncio.gather(
                *(api.delivery(t, u).send(api.http) for t, u in zip(tokens, users, strict=True))
            )
            for response, inv in zip(during, created, strict=True):
                assert response.status_code == 200, response.text
                assert response.json() == {
                    "result": "accepted",
                    "invitation_id": inv["id"],
                    "roles": ["customer"],
                    "grant": "pending",
                }
            # Let the server's time run through the outage and one more Retry-After. (Handles got
            # by id, as the API's are, do not unlock time skipping in `result()` themselves.)
            await stack.env.sleep(OUTAGE + timedelta(seconds=RETRY_AFTER_S))
            async with asyncio.timeout(30):
                finals: list[InvitationState] = await asyncio.gather(*(h.result() for h in stack.handles))

            # A later login by the same user (a new webhook) gets the settled answer.
            after = await asyncio.gather(
                *(api.delivery(t, u).send(api.http) for t, u in zip(tokens, users, strict=True))
            )
            assert {(r.status_code, r.json()["grant"]) for r in after} == {(200, "done")}

            attempts: list[int] = []
            for handle, final, user in zip(stack.handles, finals, users, strict=True):
                assert (final.status, final.grant, final.accepted_by) == (
                    Status.ACCEPTED,
                    "done",
                    user["user_id"],
                )
                assert stack.auth0.role_names(user["user_id"]) == ["customer"]
                assert stack.auth0.role_assignments[user["user_id"]] == 1
                attempt, started = (await completed_attempts(handle))[GRANT]
                assert started.timestamp() >= outage_ends  # through only after the outage
                assert attempt >= 2  # it was tried during the outage
                attempts.append(attempt)

    # Each failed attempt was refused once per call it started. Spaced by `Retry-After` (120 s),
    # ten minutes hold at most six attempts; the policy's own backoff (1 s, doubling) would have
    # made ten or eleven.
    refused = stack.auth0.faults.count(status=429)
    assert refused == FIRST_CALLS_PER_ATTEMPT * sum(a - 1 for a in attempts), (refused, attempts)
    assert max(attempts) <= OUTAGE.total_seconds() // RETRY_AFTER_S + 1, attempts


@pytest.mark.slow
@pytest.mark.postgres
async def test_database_outage_answers_503_writes_nothing_half_and_the_link_is_retried(
    ts_env: WorkflowEnvironment, tmp_path: Path, proxied_postgres: ProxiedDatabase
):
    """PostgreSQL goes away (connections refused and cut) and comes back.

    Meanwhile the API answers 503 with `Retry-After` (never 500) and writes nothing half: a
    create stores no row and starts no workflow, a webhook applies no redemption and keeps no
    receipt, so the very same message succeeds afterwards. An invitation accepted during the
    outage keeps retrying its grant (`grant_access`, which writes the link; workflow version 4)
    and ends accepted with one link row.
    """
    db = proxied_postgres
    async with (
        open_stack(ts_env, tmp_path, {"database_url": db.url}) as stack,
        api_for(stack, clock=stack.now) as api,
        stack.worker(),
    ):
        first = await api.created("first@example.com", roles=["customer"])
        second = await api.created("second@example.com", roles=["customer"])
        first_handle, second_handle = stack.handles
        await stack.sent(first_handle)
        await stack.sent(second_handle)
        second_user = account(stack.auth0, "second@example.com", email_verified=True)
        stack.auth0.create_user("first@example.com")
        webhook = api.delivery(stack.links("second@example.com")[-1], second_user)

        await db.proxy.down()

        body = {"roles": ["customer"], "external_ref": "crm-outage-1", "data": {"plan": "pro"}}
        refused = await api.create("third@example.com", **body)
        assert_unavailable(refused)
        third_id = invitation_id_for_ref("crm-outage-1")
        with pytest.raises(RPCError) as not_started:
            await handle_for(stack.client, third_id).describe()
        assert not_started.value.status == RPCStatusCode.NOT_FOUND

        assert_unavailable(await webhook.send(api.http))
        assert (await stack.state(second_handle)).status == Status.PENDING

        ready = await api.http.get("/readyz")
        assert (ready.status_code, ready.json()["checks"]) == (
            503,
            {"temporal": "ok", "database": "unavailable"},
        )

        # Accepted while the database is away (the webhook's redeem, made directly): the grant
        # fails on its link part and retries for ten minutes of workflow time.
        result = await stack.redeem(first_handle, user_payload(stack.auth0, "first@example.com"))
        assert (result.result, result.grant) == ("accepted", "pending")
        await stack.env.sleep(OUTAGE)
        assert (await stack.state(first_handle)).grant == "pending"
        [pending] = (await first_handle.describe()).raw_description.pending_activities
        assert (pending.activity_type.name, pending.attempt >= 5) == ("grant_access", True)
        # The link part's error is what keeps it retrying (the Auth0 parts succeeded each time).
        assert pending.last_failure.application_failure_info.type == "OperationalError"

        await db.proxy.up()
        await stack.env.sleep(AUTH0_RETRY.maximum_interval)  # the grant's next retry comes due

        async with asyncio.timeout(30):
            final = await first_handle.result()
        assert (final.status, final.grant) == (Status.ACCEPTED, "done")
        attempt, _ = (await completed_attempts(first_handle))["grant_access"]
        assert attempt >= 5, attempt  # retried through the outage, then through
        # Its Auth0 parts succeeded on the first attempt. A retry links first: through the
        # outage none reached Auth0; the last one (the database back) read once and wrote nothing.
        assert stack.auth0.faults.count("GET /api/v2/users/{id}") == 2
        assert stack.auth0.faults.count("GET /api/v2/users/{id}/roles") == 2
        assert stack.auth0.faults.count("PATCH /api/v2/users/{id}") == 1
        assert stack.auth0.faults.count("POST /api/v2/users/{id}/roles") == 1

        # The Action's retry of the very same message is applied now (no receipt was kept).
        again = await webhook.until_final(api.http)
        assert again.status_code == 200, again.text
        assert again.json()["invitation_id"] == second["id"]
        assert (await second_handle.result()).accepted_by == second_user["user_id"]

        created = await api.create("third@example.com", **body)
        assert (created.status_code, created.json()["id"]) == (201, third_id)
        repeated = await api.create("third@example.com", **body)
        assert (repeated.status_code, repeated.json()["id"]) == (200, third_id)

    direct = create_engine(db.direct_url)
    try:
        async with direct.connect() as connection:
            links = (
                await connection.execute(
                    text("SELECT invitation_id, user_id FROM account_links ORDER BY invitation_id")
                )
            ).all()
            invitations = (await connection.execute(text("SELECT id FROM invitations ORDER BY id"))).all()
            receipts = (
                await connection.execute(
                    text("SELECT status_code FROM webhook_receipts WHERE webhook_id = :id"),
                    {"id": webhook.headers["webhook-id"]},
                )
            ).all()
    finally:
        await direct.dispose()
    first_uid = final.accepted_by
    assert sorted(links) == sorted([(first["id"], first_uid), (second["id"], second_user["user_id"])])
    assert [row.id for row in invitations] == sorted([first["id"], second["id"], third_id])
    assert [row.status_code for row in receipts] == [200]
