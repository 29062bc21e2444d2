"""A burst of webhook redeems on one invitation, beyond Temporal's limit of in-flight updates.

Temporal admits at most 10 in-flight updates per workflow (`history.maxInFlightUpdates`) and
answers the next ones RESOURCE_EXHAUSTED, which the API must turn into 503 + `Retry-After`, never a
500, while the invitation is still granted exactly once. The time-skipping test server does not
enforce the limit (30 concurrent redeems are all admitted there), so these tests run on the real
dev server, the app wired as in production: it builds its own Temporal client from the settings.

Every answer must come within the Action's 5 s per call: a redeem not accepted within
`ACCEPT_BUDGET` (2 s) is a 503, and an accepted one waits for its grant for what is left of
`REDEEM_BUDGET` (3 s), then answers `grant: "pending"` (invites/invitations.py). To see the 503s
for certain, the second test runs the burst with no worker, so admitted updates stay in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from tests.workflows.conftest import Stack, _stack, terminate_open
from worker import build_activities, build_workers

from .conftest import SIGNIN, Api, serve

pytestmark = pytest.mark.devserver

ASSIGN_ROLES = "POST /api/v2/users/{id}/roles"
BURST = 30
UPDATE_LIMIT = 10  # the dev server's default `history.maxInFlightUpdates`
# The post-login Action gives each attempt 5 s (`timeoutMs` in auth0/actions/post-login.js).
ACTION_TIMEOUT_S = 5.0
RETRIES = 20


@contextlib.asynccontextmanager
async def api_on_dev_server(env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Api]:
    """The `api` fixture's stack on the real dev server, without its worker (tests start it)."""
    address = env.client.service_client.config.target_host
    async with _stack(env, tmp_path, {"temporal_address": address}) as base:
        settings = base.settings.model_copy(
            update={"auth0_issuer": f"{base.settings.auth0_base_url}/", "signin_url": SIGNIN}
        )
        stack = dataclasses.replace(base, settings=settings)
        app = create_app(settings)
        async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
            yield Api(stack, app, http, url)
        await terminate_open(stack)


@dataclass
class Delivery:
    """One signed webhook delivery, kept so a retry resends the very same message."""

    content: bytes
    headers: dict[str, str]
    attempts: list[tuple[httpx.Response, float]] = field(default_factory=list)

    async def send(self, api: Api) -> None:
        started = time.monotonic()
        response = await api.http.post("/v1/webhooks/auth0", content=self.content, headers=self.headers)
        self.attempts.append((response, time.monotonic() - started))

    @property
    def response(self) -> httpx.Response:
        """The latest answer."""
        return self.attempts[-1][0]


def delivery(api: Api, token: str, user: dict[str, Any]) -> Delivery:
    body = {
        "type": "invitation.redeem",
        "invitation": token,
        "user": user,
        "connection": {"name": "Username-Password-Authentication", "strategy": "auth0"},
        "is_new_user": False,
    }
    content = json.dumps(body).encode()
    return Delivery(content, api.sign(content, msg_id=f"msg_{uuid.uuid4().hex}"))


@contextlib.asynccontextmanager
async def worker_for_a_while(stack: Stack) -> AsyncIterator[None]:
    """The production worker, stopped without `Stack.worker()`'s cleanup: the invitation lives on."""
    async with build_activities(stack.settings) as acts, contextlib.AsyncExitStack() as workers:
        for worker in build_workers(stack.client, stack.settings, acts):
            await workers.enter_async_context(worker)
        yield


async def invite(api: Api, email: str) -> tuple[dict[str, Any], str]:
    created = await api.created(email, roles=["customer"], email_policy="any")
    await api.stack.sent(api.stack.handles[-1])
    return created, api.stack.links(email)[-1]


def account(api: Api, email: str) -> dict[str, Any]:
    user = api.stack.auth0.create_user(email)
    return {"user_id": user["user_id"], "email": email, "email_verified": True}


def assert_unavailable(response: httpx.Response) -> None:
    assert response.headers.get("retry-after", "").isdigit(), response.headers
    assert response.json()["error"]["code"] == "unavailable", response.text


async def test_a_burst_by_one_user_while_the_grant_is_blocked_never_500s_and_grants_once(
    dev_env: WorkflowEnvironment, tmp_path: Path
):
    async with api_on_dev_server(dev_env, tmp_path) as api, api.stack.worker():
        created, token = await invite(api, "burst-same@example.com")
        user = account(api, "burst-same@example.com")
        deliveries = [delivery(api, token, user) for _ in range(BURST)]
        hold = api.stack.auth0.faults.hold(ASSIGN_ROLES)
        await asyncio.gather(*(d.send(api) for d in deliveries))
        hold.release()
        for d in [d for d in deliveries if d.response.status_code == 503]:
            assert_unavailable(d.response)
            await d.send(api)  # the Action's retry: the very same message
        final = await api.stack.handles[-1].result()

    accepted = {"result": "accepted", "invitation_id": created["id"], "roles": ["customer"]}
    for d in deliveries:
        assert d.response.status_code == 200, d.response.text
        assert d.response.json().items() >= accepted.items()
    assert final.accepted_by == user["user_id"]
    assert dict(api.stack.auth0.role_assignments) == {user["user_id"]: 1}
    assert_answered_in_time(deliveries)


async def test_a_burst_beyond_the_update_limit_is_answered_503_in_time_and_each_retry_gets_its_answer(
    dev_env: WorkflowEnvironment, tmp_path: Path
):
    async with api_on_dev_server(dev_env, tmp_path) as api:
        async with worker_for_a_while(api.stack):
            created, token = await invite(api, "burst-many@example.com")
        users = [account(api, f"burst-{i}@example.com") for i in range(BURST)]
        deliveries = [delivery(api, token, user) for user in users]
        # No worker: the first updates are admitted and wait in flight, the rest are refused.
        await asyncio.gather(*(d.send(api) for d in deliveries))
        first = [d.response for d in deliveries]
        async with api.stack.worker():
            for d in deliveries:
                # The Action's retry: the very same message (updates still in flight from the
                # burst may hold the limit a little longer: the next login's retry then gets it).
                for _ in range(RETRIES):
                    await d.send(api)
                    if d.response.status_code != 503:
                        break
                    assert_unavailable(d.response)
                    await asyncio.sleep(0.5)
            final = await api.stack.handles[-1].result()

    for response in first:
        assert response.status_code == 503, response.text
        assert_unavailable(response)
    assert_answered_in_time(deliveries)
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
            assert (d.response.status_code, d.response.json()) == (
                409,
                {"result": "rejected", "reason": "already_redeemed"},
            )
    assert final.accepted_by == winner["user_id"]
    assert dict(api.stack.auth0.role_assignments) == {winner["user_id"]: 1}


def assert_answered_in_time(deliveries: list[Delivery]) -> None:
    """Within the Action's timeout, or the Action would have given up before the answer."""
    slowest = max(seconds for d in deliveries for _, seconds in d.attempts)
    assert slowest < ACTION_TIMEOUT_S, f"an answer took {slowest:.1f} s"
