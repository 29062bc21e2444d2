"""Fault injection as the real SDK experiences it, scripted in-process and over HTTP."""

from __future__ import annotations

import asyncio
import math

import httpx
import pytest
from auth0.management import AsyncAuth0
from auth0.management.core.api_error import ApiError
from auth0.management.errors import TooManyRequestsError

from sandbox.auth0_api import Auth0Fake

GET_USER = "GET /api/v2/users/{id}"


@pytest.fixture
def user_id(auth0_fake: Auth0Fake) -> str:
    return auth0_fake.create_user("ann@example.com")["user_id"]


async def test_429_with_retry_after_three_times_then_success(
    auth0_fake: Auth0Fake, auth0: AsyncAuth0, user_id: str
) -> None:
    auth0_fake.faults.status(GET_USER, 429, headers={"Retry-After": "7"}, times=3)

    for _ in range(3):
        with pytest.raises(TooManyRequestsError) as caught:
            await auth0.users.get(user_id)
        assert caught.value.headers["retry-after"] == "7"
        assert caught.value.body["statusCode"] == 429
    user = await auth0.users.get(user_id)

    assert user.email == "ann@example.com"
    assert [c.status for c in auth0_fake.faults.calls(GET_USER)] == [429, 429, 429, 200]
    assert auth0_fake.faults.pending() == []


async def test_503_once_then_success(auth0_fake: Auth0Fake, auth0: AsyncAuth0, user_id: str) -> None:
    auth0_fake.faults.status(GET_USER, 503)
    with pytest.raises(ApiError) as caught:
        await auth0.users.get(user_id)
    assert caught.value.status_code == 503
    assert (await auth0.users.get(user_id)).user_id == user_id


async def test_custom_body_and_headers_are_answered_verbatim(
    auth0_fake: Auth0Fake, auth0: AsyncAuth0, user_id: str
) -> None:
    auth0_fake.faults.status(GET_USER, 500, body={"oops": True}, headers={"X-Trace": "t1"})
    with pytest.raises(ApiError) as caught:
        await auth0.users.get(user_id)
    assert (caught.value.body, caught.value.headers["x-trace"]) == ({"oops": True}, "t1")


async def test_drop_closes_the_connection_without_a_response(
    auth0_fake: Auth0Fake, auth0: AsyncAuth0, user_id: str
) -> None:
    auth0_fake.faults.drop(GET_USER)
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        await auth0.users.get(user_id)
    assert (await auth0.users.get(user_id)).user_id == user_id
    dropped, answered = auth0_fake.faults.calls(GET_USER)
    assert (dropped.fault, dropped.status, answered.status) == ("drop", None, 200)


async def test_delay_answers_late_and_trips_a_short_client_timeout(
    auth0_fake: Auth0Fake, auth0_url: str, token_for, user_id: str
) -> None:
    token = await token_for(auth0_url)
    auth0_fake.faults.delay(GET_USER, 0.3, times=2)
    async with httpx.AsyncClient(timeout=httpx.Timeout(5, read=0.1)) as impatient:  # only reads are short
        client = AsyncAuth0(
            base_url=f"{auth0_url}/api/v2", token=token, max_retries=0, httpx_client=impatient
        )
        with pytest.raises(httpx.ReadTimeout):
            await client.users.get(user_id)
    async with httpx.AsyncClient(timeout=5) as patient:
        client = AsyncAuth0(base_url=f"{auth0_url}/api/v2", token=token, max_retries=0, httpx_client=patient)
        assert (await client.users.get(user_id)).user_id == user_id
    # Both requests were delayed, and the delayed answer is the real one.
    assert [(c.fault, c.status) for c in auth0_fake.faults.calls(GET_USER)] == [
        ("delay", 200),
        ("delay", 200),
    ]


async def test_hold_parks_the_request_until_released(
    auth0_fake: Auth0Fake, auth0: AsyncAuth0, user_id: str
) -> None:
    hold = auth0_fake.faults.hold(GET_USER)
    pending = asyncio.create_task(auth0.users.get(user_id))
    await asyncio.wait_for(hold.arrived(), 2)
    await asyncio.sleep(0.05)

    assert not pending.done()
    assert [c.status for c in auth0_fake.faults.calls(GET_USER)] == [None]
    hold.release()
    assert (await asyncio.wait_for(pending, 2)).user_id == user_id
    assert auth0_fake.faults.calls(GET_USER)[0].status == 200


async def test_fault_for_a_period_lasts_until_the_clock_passes_it(clock, token_for, client_for) -> None:
    fake = Auth0Fake(clock=clock)
    user_id = fake.create_user("ann@example.com")["user_id"]
    async with fake.serve() as url:
        client = client_for(url, await token_for(url))
        fake.faults.status(GET_USER, 429, headers={"Retry-After": "600"}, for_seconds=600)
        for _ in range(3):
            with pytest.raises(TooManyRequestsError):
                await client.users.get(user_id)
            clock.advance(199)
        clock.advance(4)
        assert (await client.users.get(user_id)).user_id == user_id
    assert fake.faults.count(GET_USER, status=429) == 3


async def test_route_script_comes_before_the_wildcard(auth0_fake: Auth0Fake, auth0: AsyncAuth0) -> None:
    auth0_fake.faults.status("*", 503)
    auth0_fake.faults.status("GET /api/v2/roles", 500)
    statuses = []
    for _ in range(3):
        try:
            await auth0.roles.list(per_page=5, page=1)
            statuses.append(200)
        except ApiError as exc:
            statuses.append(exc.status_code)
    assert statuses == [500, 503, 200]


async def test_rate_limit_answers_429_with_auth0_headers(clock, token_for, client_for) -> None:
    fake = Auth0Fake(rate_limit=2, clock=clock)
    user_id = fake.create_user("ann@example.com")["user_id"]
    async with fake.serve() as url:
        client = client_for(url, await token_for(url))
        first = await client.users.with_raw_response.get(user_id)
        await client.users.get(user_id)
        with pytest.raises(TooManyRequestsError) as caught:
            await client.users.get(user_id)
        clock.advance(0.5)
        assert (await client.users.get(user_id)).user_id == user_id

    assert first.headers["x-ratelimit-limit"] == "2"
    assert first.headers["x-ratelimit-remaining"] == "1"
    limited = caught.value.headers
    assert (limited["x-ratelimit-limit"], limited["x-ratelimit-remaining"]) == ("2", "0")
    assert int(limited["x-ratelimit-reset"]) == math.ceil(clock.now - 0.5 + 1)
    assert caught.value.body["errorCode"] == "too_many_requests"


async def test_admin_surface_scripts_faults_and_reads_calls_over_http(
    auth0_fake: Auth0Fake,
    auth0: AsyncAuth0,
    auth0_url: str,
    http: httpx.AsyncClient,
    user_id: str,
) -> None:
    scripted = await http.post(
        f"{auth0_url}/__fake/faults",
        json=[{"route": GET_USER, "kind": "status", "status": 503, "times": 2}],
    )
    for _ in range(2):
        with pytest.raises(ApiError):
            await auth0.users.get(user_id)
    await auth0.users.get(user_id)
    calls = (await http.get(f"{auth0_url}/__fake/calls", params={"route": GET_USER})).json()
    reset = await http.post(f"{auth0_url}/__fake/reset")
    after = (await http.get(f"{auth0_url}/__fake/calls")).json()

    assert scripted.status_code == 201
    assert [c["status"] for c in calls["calls"]] == [503, 503, 200]
    assert calls["calls"][0]["path"] == f"/api/v2/users/{user_id}"
    assert reset.status_code == 204
    assert after == {"calls": []}


async def test_admin_surface_holds_and_releases_over_http(
    auth0: AsyncAuth0, auth0_url: str, http: httpx.AsyncClient, user_id: str
) -> None:
    scripted = await http.post(f"{auth0_url}/__fake/faults", json={"route": GET_USER, "kind": "hold"})
    hold_id = scripted.json()["faults"][0]["hold"]
    pending = asyncio.create_task(auth0.users.get(user_id))
    await asyncio.sleep(0.1)
    assert not pending.done()

    released = await http.post(f"{auth0_url}/__fake/holds/{hold_id}/release")
    assert released.status_code == 204
    assert (await asyncio.wait_for(pending, 2)).user_id == user_id


async def test_admin_surface_refuses_an_unknown_fault_kind(auth0_url: str, http: httpx.AsyncClient) -> None:
    response = await http.post(f"{auth0_url}/__fake/faults", json={"kind": "explode"})
    assert response.status_code == 400
    assert "unknown fault kind" in response.json()["error"]
