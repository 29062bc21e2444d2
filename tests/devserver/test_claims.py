"""Claim by verified email, end to end on the dev server (real visibility): logins through the
sandbox's universal login run the real Action, which asks the API (over HTTP) once per account.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from invites.models import Status
from sandbox.auth0_api import DEV_CLIENT_ID, DEV_CLIENT_SECRET
from tests.support.api import Api, api_for
from tests.support.stack import Stack
from tests.support.temporal import listed
from tests.support.webhooks import WEBHOOK

pytestmark = pytest.mark.devserver
CALLBACK = "http://app.test/callback"
ROLES = "https://invites.dev/roles"
PASSWORD = "correct horse battery"


@pytest.fixture
async def api(dev_stack: Stack) -> AsyncIterator[Api]:
    """The API over HTTP on the dev stack, its worker running, and the sandbox's Action
    posting to it."""
    async with api_for(dev_stack) as api, dev_stack.worker():
        dev_stack.auth0.login.action_secrets.update(
            INVITES_WEBHOOK_URL=f"{api.url}{WEBHOOK}", INVITES_WEBHOOK_SECRET=api.secret
        )
        yield api


def address(name: str) -> str:
    return f"{name}.{uuid.uuid4().hex[:8]}@example.com"


async def pending(api: Api, email: str, **body: Any) -> str:
    """Create an invitation over HTTP, wait for its mail and for visibility to list it."""
    invitation = await api.created(email, **body)
    await api.stack.sent(api.stack.handles[-1])
    workflow = f"invitation-{invitation['id']}"
    query = f'WorkflowId="{workflow}" AND InvitationStatus="pending"'
    await listed(api.stack.env.client, query, {workflow})
    return invitation["id"]


async def status_of(api: Api, invitation_id: str) -> dict[str, Any]:
    return (await api.http.get(f"/v1/invitations/{invitation_id}", headers=api.key)).json()


async def log_in(api: Api, form: str, **fields: str) -> dict[str, Any]:
    """One universal login without a link (`form`: signup, login or social); the ID token's claims."""
    base = api.stack.settings.auth0_base_url
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        page = await http.get(
            "/authorize",
            params={
                "client_id": DEV_CLIENT_ID,
                "redirect_uri": CALLBACK,
                "response_type": "code",
                "scope": "openid email",
            },
        )
        transaction = re.search(r'name="transaction" value="([^"]+)"', page.text).group(1)
        done = await http.post(f"/u/{form}", data={"transaction": transaction, **fields})
        assert done.status_code == 302, done.text
        code = parse_qs(urlsplit(done.headers["location"]).query)["code"][0]
        tokens = await http.post(
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "client_id": DEV_CLIENT_ID,
                "client_secret": DEV_CLIENT_SECRET,
                "code": code,
                "redirect_uri": CALLBACK,
            },
        )
    return jwt.decode(tokens.json()["id_token"], options={"verify_signature": False})


def google(api: Api, email: str) -> Any:
    return log_in(api, "social", connection="google-oauth2", email=email)


def claims_asked(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The Action's log lines of its claim calls (the sandbox logs what the Action prints)."""
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("invites: claim ")]


async def test_a_google_account_made_before_the_invitation_was_opened_gets_its_roles_at_the_next_login(
    api: Api, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="sandbox.actions")
    email = address("gia")
    user = api.stack.auth0.create_user(email, connection="google-oauth2")  # signed up, never asked
    invitation_id = await pending(api, email, roles=["customer"], data={"plan": "pro"})

    claims = await google(api, email)

    assert claims[ROLES] == ["customer"]
    state = await status_of(api, invitation_id)
    assert (state["status"], state["accepted_by"]) == ("accepted", user["user_id"])
    account = api.stack.auth0.user(user["user_id"])
    assert api.stack.auth0.role_names(user["user_id"]) == ["customer"]
    assert "claimed_at" in account["app_metadata"]["invites"]  # written by the grant
    assert [i["id"] for i in account["app_metadata"]["invitations"]] == [invitation_id]
    assert claims_asked(caplog) == ["invites: claim ok: claimed 1"]

    # The customer space shows the funnel data of the claimed invitation.
    me = await api.http.get("/v1/me", headers=api.bearer(api.user_token(user["user_id"])))
    assert [i["data"] for i in me.json()["invitations"]] == [{"plan": "pro"}]


async def test_a_second_login_does_not_ask_again(api: Api, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="sandbox.actions")
    email = address("twice")
    first = await google(api, email)  # a sign-up with Google, no invitation anywhere
    second = await google(api, email)
    assert ROLES not in first and ROLES not in second
    assert claims_asked(caplog) == ["invites: claim ok: none"]  # asked once, then marked
    [user] = api.stack.auth0.tenant.users_by_email(email)
    assert "claimed_at" in user["app_metadata"]["invites"]


async def test_a_google_sign_up_without_the_link_claims_two_pending_invitations(api: Api):
    email = address("two")
    first = await pending(api, email, roles=["customer"], app_metadata={"a": 1})
    second = await pending(api, email, roles=["member"], app_metadata={"b": 2})

    claims = await google(api, email)

    assert sorted(claims[ROLES]) == ["customer", "member"]
    [user] = api.stack.auth0.tenant.users_by_email(email)
    for invitation_id in (first, second):
        assert (await status_of(api, invitation_id))["accepted_by"] == user["user_id"]
    assert api.stack.auth0.role_names(user["user_id"]) == ["customer", "member"]
    # Both grants wrote the same keys side by side: neither entry is lost.
    metadata = api.stack.auth0.user(user["user_id"])["app_metadata"]
    assert sorted(i["id"] for i in metadata["invitations"]) == sorted([first, second])
    assert metadata["invites"]["data"] == {"a": 1, "b": 2}


async def test_an_unverified_password_account_claims_nothing(api: Api, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="sandbox.actions")
    email = address("pwd")
    invitation_id = await pending(api, email, roles=["customer"])

    claims = await log_in(api, "signup", email=email, password=PASSWORD)

    assert ROLES not in claims
    assert claims_asked(caplog) == []  # the Action does not even ask
    assert (await status_of(api, invitation_id))["status"] == Status.PENDING


async def test_an_any_invitation_is_not_claimed(api: Api):
    email = address("any")
    invitation_id = await pending(api, email, roles=["customer"], email_policy="any")

    claims = await google(api, email)

    assert ROLES not in claims
    assert (await status_of(api, invitation_id))["status"] == Status.PENDING


async def test_the_api_checks_the_address_is_verified_whatever_the_action_says(api: Api):
    email = address("liar")
    invitation_id = await pending(api, email, roles=["customer"])
    unverified = api.stack.auth0.create_user(email, password=PASSWORD)
    body = {
        "type": "invitation.claim",
        "user": {"user_id": unverified["user_id"], "email": email, "email_verified": False},
        "connection": {"name": "Username-Password-Authentication", "strategy": "auth0"},
    }
    raw = json.dumps(body).encode()
    response = await api.http.post(WEBHOOK, content=raw, headers=api.sign(raw))
    assert (response.status_code, response.json()) == (200, {"result": "none", "invitations": []})
    assert (await status_of(api, invitation_id))["status"] == Status.PENDING


@pytest.mark.parametrize("settings_overrides", [{"claim_by_verified_email": False}])
async def test_with_the_setting_off_the_api_answers_none(api: Api):
    email = address("off")
    invitation_id = await pending(api, email, roles=["customer"])

    claims = await google(api, email)

    assert ROLES not in claims
    assert (await status_of(api, invitation_id))["status"] == Status.PENDING
