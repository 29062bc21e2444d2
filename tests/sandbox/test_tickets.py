"""The sandbox's password-change tickets, made through auth0-python as the worker makes them, and
their page over HTTP: set a password once, the address marked verified, then `result_url`."""

from __future__ import annotations

import re

import httpx
import pytest
from auth0.management import AsyncAuth0
from auth0.management.core.api_error import ApiError

from sandbox.auth0_api import DEV_CLIENT_ID, DEV_CLIENT_SECRET, Auth0Fake
from tests.sandbox.conftest import ManualClock

RESULT_URL = "http://app.test/app"
NEW_PASSWORD = "a brand new password"


@pytest.fixture
def auth0_fake(clock: ManualClock) -> Auth0Fake:
    return Auth0Fake(clock=clock, action=None)


def invited(auth0_fake: Auth0Fake, email: str = "pia@example.com") -> str:
    user = auth0_fake.create_user(
        email, password="unknown to anyone 1!", app_metadata={"invites": {"status": "invited"}}
    )
    return user["user_id"]


async def ticket_for(auth0: AsyncAuth0, user_id: str, **kwargs: object) -> str:
    answer = await auth0.tickets.change_password(
        user_id=user_id, result_url=RESULT_URL, mark_email_as_verified=True, **kwargs
    )
    return answer.ticket


def ticket_id(url: str) -> str:
    return re.search(r"ticket=([A-Za-z0-9_-]+)", url).group(1)


async def set_password(
    http: httpx.AsyncClient, url: str, password: str = NEW_PASSWORD, confirm: str | None = None
):
    return await http.post(
        url.split("?")[0],
        data={"ticket": ticket_id(url), "password": password, "confirm": confirm or password},
    )


async def test_a_ticket_sets_the_password_once_verifies_the_address_and_goes_to_result_url(
    auth0: AsyncAuth0, auth0_fake: Auth0Fake, auth0_url: str, http: httpx.AsyncClient
):
    user_id = invited(auth0_fake)
    url = await ticket_for(auth0, user_id, ttl_sec=3600)
    assert url.startswith(f"{auth0_url}/u/reset-password?ticket=") and url.endswith("#")

    page = await http.get(url)
    assert page.status_code == 200 and "pia@example.com" in page.text

    done = await set_password(http, url)
    assert (done.status_code, done.headers["location"]) == (302, RESULT_URL)
    user = auth0_fake.user(user_id)
    assert user["email_verified"] is True
    assert user["logins_count"] == 0  # setting a password is not a login
    token = await http.post(
        f"{auth0_url}/oauth/token",
        data={
            "grant_type": "password",
            "client_id": DEV_CLIENT_ID,
            "client_secret": DEV_CLIENT_SECRET,
            "username": "pia@example.com",
            "password": NEW_PASSWORD,
        },
    )
    assert token.status_code == 200, token.text

    again = await http.get(url)
    assert again.status_code == 410 and "This ticket was already used." in again.text
    assert (await set_password(http, url, "yet another password")).status_code == 410


async def test_a_new_ticket_makes_the_older_one_invalid(
    auth0: AsyncAuth0, auth0_fake: Auth0Fake, http: httpx.AsyncClient
):
    user_id = invited(auth0_fake)
    old = await ticket_for(auth0, user_id)
    new = await ticket_for(auth0, user_id)
    refused = await http.get(old)
    assert refused.status_code == 404 and "Invalid Link" in refused.text
    assert (await set_password(http, old)).status_code == 404
    assert (await http.get(new)).status_code == 200
    assert auth0_fake.tickets.issued_for(user_id) == [ticket_id(old), ticket_id(new)]


async def test_an_expired_or_unknown_ticket_shows_the_error_page(
    auth0: AsyncAuth0, auth0_fake: Auth0Fake, auth0_url: str, clock: ManualClock, http: httpx.AsyncClient
):
    url = await ticket_for(auth0, invited(auth0_fake), ttl_sec=60)
    clock.advance(61)
    expired = await http.get(url)
    assert expired.status_code == 410 and "This ticket was expired." in expired.text
    unknown = await http.get(f"{auth0_url}/u/reset-password?ticket=forged")
    assert unknown.status_code == 404 and "Invalid Link" in unknown.text
    assert (await http.get(f"{auth0_url}/u/reset-password")).status_code == 404


async def test_the_default_lifetime_is_five_days(
    auth0: AsyncAuth0, auth0_fake: Auth0Fake, clock: ManualClock, http: httpx.AsyncClient
):
    url = await ticket_for(auth0, invited(auth0_fake))
    clock.advance(5 * 86400 - 60)
    assert (await http.get(url)).status_code == 200
    clock.advance(120)
    assert (await http.get(url)).status_code == 410


async def test_a_short_or_mismatched_password_shows_the_form_again(
    auth0: AsyncAuth0, auth0_fake: Auth0Fake, http: httpx.AsyncClient
):
    user_id = invited(auth0_fake)
    url = await ticket_for(auth0, user_id)
    short = await set_password(http, url, "short")
    assert short.status_code == 400 and "at least 8 characters" in short.text
    mismatch = await set_password(http, url, NEW_PASSWORD, "something else")
    assert mismatch.status_code == 400 and "do not match" in mismatch.text
    assert auth0_fake.user(user_id)["email_verified"] is False
    assert (await set_password(http, url)).status_code == 302  # the ticket is still good


async def test_ticket_requests_auth0_refuses(auth0: AsyncAuth0, auth0_fake: Auth0Fake):
    with pytest.raises(ApiError) as missing:
        await auth0.tickets.change_password(user_id="auth0|nobody", result_url=RESULT_URL)
    assert missing.value.status_code == 404
    assert missing.value.body["errorCode"] == "inexistent_user"

    social = auth0_fake.create_user("g@example.com", connection="google-oauth2")
    with pytest.raises(ApiError) as not_database:
        await auth0.tickets.change_password(user_id=social["user_id"])
    assert not_database.value.status_code == 400

    with pytest.raises(ApiError) as bad_url:
        await auth0.tickets.change_password(user_id=invited(auth0_fake), result_url="javascript:alert(1)")
    assert (bad_url.value.status_code, bad_url.value.body["errorCode"]) == (400, "invalid_body")

    with pytest.raises(ApiError) as nobody:
        await auth0.tickets.change_password(result_url=RESULT_URL)
    assert nobody.value.status_code == 400


async def test_a_ticket_by_connection_and_email(
    auth0: AsyncAuth0, auth0_fake: Auth0Fake, http: httpx.AsyncClient
):
    invited(auth0_fake, "byemail@example.com")
    answer = await auth0.tickets.change_password(connection_id="con_1", email="ByEmail@Example.com")
    assert (await http.get(answer.ticket)).status_code == 200


async def test_created_users_have_no_logins_and_a_deleted_one_is_gone(
    auth0: AsyncAuth0, auth0_fake: Auth0Fake
):
    created = await auth0.users.create(
        connection="Username-Password-Authentication", email="new@example.com", password="long enough 1!"
    )
    fetched = await auth0.users.get(created.user_id, fields="logins_count,last_login")
    assert (fetched.logins_count, fetched.last_login) == (0, None)
    await auth0.users.delete(created.user_id)
    assert auth0_fake.tenant.users_by_email("new@example.com") == []
    await auth0.users.delete(created.user_id)  # 204 again, as Auth0 answers
    with pytest.raises(ApiError) as gone:
        await auth0.users.get(created.user_id)
    assert gone.value.status_code == 404


async def test_tickets_survive_a_restart(tmp_path, http: httpx.AsyncClient):
    state = tmp_path / "tenant.json"
    first = Auth0Fake(state_path=state, action=None)
    user_id = first.create_user("keep@example.com", password="whatever it is 1!")["user_id"]
    async with first.serve() as url:
        token = (
            await http.post(
                f"{url}/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": DEV_CLIENT_ID,
                    "client_secret": DEV_CLIENT_SECRET,
                },
            )
        ).json()["access_token"]
        made = await http.post(
            f"{url}/api/v2/tickets/password-change",
            json={"user_id": user_id},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert made.status_code == 201
        ticket = made.json()["ticket"]
    second = Auth0Fake(state_path=state, action=None)
    async with second.serve() as url:
        assert (await http.get(f"{url}/u/reset-password?ticket={ticket_id(ticket)}")).status_code == 200
