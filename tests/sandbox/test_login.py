"""The sandbox's universal login over real HTTP, with the real post-login Action under Node.js.

The Action posts to a small webhook server playing the invites API: it verifies the Standard
Webhooks signature, compares the invited address with the user's, and on acceptance grants the
role in the sandbox through the Management API, as the API's worker would.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from aiohttp import web
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from invites.settings import DEV_WEBHOOK_SECRET
from sandbox.action_runner import DEFAULT_ACTION, NODE_MISSING
from sandbox.auth0_api import DEV_CLIENT_ID, DEV_CLIENT_SECRET, Auth0Fake
from sandbox.server import FakeServer
from tests.support.auth0 import management_headers
from tests.support.webhooks import redeem_body

API_AUDIENCE = "https://invites.local/api"
CALLBACK = "http://app.test/callback"
NS = "https://invites.dev/"
TOKEN = "v1.k1.inv_01HZX7Q3J4C5B6N7M8P9R0S1T2.1.Zm9vYmFyYmF6cXV4cXV1eA"
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True, scope="module")
def node() -> None:
    """Node.js and the Action's npm dependencies: a clear failure, never a silent skip."""
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH: install Node.js 20+", pytrace=False)
    if not (DEFAULT_ACTION.parent / "node_modules" / "standardwebhooks").is_dir():
        pytest.fail("auth0/actions/node_modules is missing: run `npm ci` there", pytrace=False)


@dataclass
class InvitesApi:
    """The webhook end of the invites API: one invitation, for `invited`, granting `member`."""

    invited: str = "ada@example.com"
    auth0_url: str = ""
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/webhooks/auth0", self.receive)
        return app

    async def receive(self, request: web.Request) -> web.Response:
        raw = await request.text()
        try:
            payload = Webhook(DEV_WEBHOOK_SECRET).verify(raw, dict(request.headers))
        except WebhookVerificationError:
            return web.json_response({"error": {"code": "bad_signature"}}, status=401)
        self.requests.append(payload)
        if payload["invitation"] != TOKEN:
            return web.json_response({"error": {"code": "not_found"}}, status=404)
        if payload["user"]["email"] != self.invited:
            return web.json_response({"result": "rejected", "reason": "email_mismatch"}, status=409)
        await self._grant(payload["user"]["user_id"], "member")
        return web.json_response(
            {"result": "accepted", "invitation_id": "inv_1", "roles": ["member"], "grant": "done"}
        )

    async def _grant(self, user_id: str, role: str) -> None:
        async with httpx.AsyncClient(base_url=self.auth0_url, timeout=5) as auth0:
            headers = await management_headers(auth0)
            roles = await auth0.get("/api/v2/roles", params={"name_filter": role}, headers=headers)
            granted = await auth0.post(
                f"/api/v2/users/{user_id}/roles", json={"roles": [roles.json()[0]["id"]]}, headers=headers
            )
            granted.raise_for_status()


@pytest.fixture
async def invites_api() -> AsyncIterator[InvitesApi]:
    api = InvitesApi()
    async with FakeServer(api.app()) as url:
        api.url = f"{url}/v1/webhooks/auth0"
        yield api


@pytest.fixture
def tenant(invites_api: InvitesApi) -> Auth0Fake:
    return Auth0Fake(webhook_url=invites_api.url, role_permissions={"member": ["read:invitations"]})


@pytest.fixture
async def url(tenant: Auth0Fake, invites_api: InvitesApi) -> AsyncIterator[str]:
    async with tenant.serve() as base:
        invites_api.auth0_url = base
        yield base


# -- a browser and an application, by hand ---------------------------------------------------


def authorize_query(**extra: str) -> dict[str, str]:
    return {
        "client_id": DEV_CLIENT_ID,
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": "openid profile email",
        "state": "st-42",
        "audience": API_AUDIENCE,
        **extra,
    }


async def login_page(http: httpx.AsyncClient, url: str, **extra: str) -> tuple[str, httpx.Response]:
    """GET /authorize; the transaction id the page's forms carry, and the page."""
    page = await http.get(f"{url}/authorize", params=authorize_query(**extra))
    assert page.status_code == 200, page.text
    found = re.search(r'name="transaction" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1), page


async def log_in(
    http: httpx.AsyncClient, url: str, form: str, fields: dict[str, str], **extra: str
) -> httpx.Response:
    """Open the login page and submit one of its forms (`signup`, `login` or `social`)."""
    transaction, _ = await login_page(http, url, **extra)
    return await http.post(f"{url}/u/{form}", data={"transaction": transaction, **fields})


def code_of(response: httpx.Response) -> str:
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    assert query["state"] == ["st-42"]
    return query["code"][0]


async def exchange(http: httpx.AsyncClient, url: str, code: str, **extra: str) -> httpx.Response:
    return await http.post(
        f"{url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "client_id": DEV_CLIENT_ID,
            "client_secret": DEV_CLIENT_SECRET,
            "code": code,
            "redirect_uri": CALLBACK,
            **extra,
        },
    )


async def tokens_for(http: httpx.AsyncClient, url: str, response: httpx.Response) -> dict[str, Any]:
    """The code in a login's redirect, exchanged: the decoded, verified access and ID tokens."""
    answer = await exchange(http, url, code_of(response))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 86_400)
    return {
        "access": await verified(url, body["access_token"], API_AUDIENCE),
        "id": await verified(url, body["id_token"], DEV_CLIENT_ID),
        "raw_access": body["access_token"],
    }


async def verified(url: str, token: str, audience: str, issuer: str | None = None) -> dict[str, Any]:
    """Check a token as the API does: the key from the tenant's JWKS, RS256, aud and iss."""
    keys = jwt.PyJWKClient(f"{url}/.well-known/jwks.json")
    key = await asyncio.to_thread(keys.get_signing_key_from_jwt, token)
    return jwt.decode(token, key.key, algorithms=["RS256"], audience=audience, issuer=issuer or f"{url}/")


SIGNUP = {"email": "ada@example.com", "password": PASSWORD}


# -- sign-up and sign-in ---------------------------------------------------------------------


async def test_signup_from_an_invitation_runs_the_action_and_returns_the_granted_roles(
    tenant: Auth0Fake, url: str, http: httpx.AsyncClient, invites_api: InvitesApi
) -> None:
    _, page = await login_page(
        http, url, invitation=TOKEN, login_hint="ada@example.com", screen_hint="signup"
    )
    assert page.text.index('action="/u/signup"') < page.text.index('action="/u/login"')
    assert 'value="ada@example.com"' in page.text

    response = await log_in(
        http, url, "signup", SIGNUP, invitation=TOKEN, login_hint="ada@example.com", screen_hint="signup"
    )
    tokens = await tokens_for(http, url, response)

    [user] = tenant.tenant.users_by_email("ada@example.com")
    assert tokens["access"]["sub"] == tokens["id"]["sub"] == user["user_id"]
    assert tokens["access"][f"{NS}roles"] == tokens["id"][f"{NS}roles"] == ["member"]
    # The role the webhook granted while the Action ran is in the token: the user was re-read.
    assert tokens["access"]["permissions"] == ["read:invitations"]
    assert tokens["id"]["email"] == "ada@example.com"
    assert tokens["id"]["email_verified"] is False
    assert tokens["id"]["name"] == "ada@example.com"
    assert f"{NS}invitation_error" not in tokens["id"]
    [redeem] = invites_api.requests
    # The message the API tests imitate (tests/support/webhooks.py) is the one the Action sends.
    user_block = {"user_id": user["user_id"], "email": "ada@example.com", "email_verified": False}
    assert redeem == redeem_body(TOKEN, {**user_block, "name": "ada@example.com"})


async def test_second_login_is_counted_and_reported_as_an_existing_user(
    tenant: Auth0Fake, url: str, http: httpx.AsyncClient, invites_api: InvitesApi
) -> None:
    code_of(await log_in(http, url, "signup", SIGNUP))
    again = await log_in(http, url, "login", SIGNUP, invitation=TOKEN, screen_hint="login")

    tokens = await tokens_for(http, url, again)

    assert tenant.logins_count(tokens["access"]["sub"]) == 2
    [redeem] = invites_api.requests
    assert redeem["is_new_user"] is False
    assert tokens["id"][f"{NS}roles"] == ["member"]


async def test_wrong_password_shows_the_page_again_with_an_error(
    tenant: Auth0Fake, url: str, http: httpx.AsyncClient, invites_api: InvitesApi
) -> None:
    tenant.create_user("ada@example.com", password=PASSWORD)

    response = await log_in(
        http, url, "login", {"email": "ada@example.com", "password": "nope-nope"}, invitation=TOKEN
    )

    assert response.status_code == 400
    assert "Wrong email or password." in response.text
    assert 'name="transaction"' in response.text
    assert invites_api.requests == []


async def test_signup_with_an_existing_email_says_to_sign_in(
    tenant: Auth0Fake, url: str, http: httpx.AsyncClient
) -> None:
    tenant.create_user("ada@example.com", password=PASSWORD)

    response = await log_in(http, url, "signup", {"email": "Ada@Example.com", "password": PASSWORD})

    assert response.status_code == 400
    assert "already exists; sign in instead" in response.text
    assert response.text.index('action="/u/login"') < response.text.index('action="/u/signup"')
    assert len(tenant.tenant.users) == 1


async def test_google_with_another_address_reports_the_mismatch_and_still_logs_in(
    tenant: Auth0Fake, url: str, http: httpx.AsyncClient, invites_api: InvitesApi
) -> None:
    google = {"connection": "google-oauth2", "email": "ada.l@gmail.com"}

    tokens = await tokens_for(http, url, await log_in(http, url, "social", google, invitation=TOKEN))

    assert tokens["id"][f"{NS}invitation_error"] == "email_mismatch"
    assert tokens["access"][f"{NS}invitation_error"] == "email_mismatch"
    assert f"{NS}roles" not in tokens["id"]
    assert tokens["id"]["sub"].startswith("google-oauth2|")
    assert tokens["id"]["email_verified"] is True
    [redeem] = invites_api.requests
    assert redeem["connection"] == {"name": "google-oauth2", "strategy": "google-oauth2"}
    assert tenant.role_names(tokens["id"]["sub"]) == []


async def test_facebook_returns_the_same_user_for_the_same_address(
    tenant: Auth0Fake, url: str, http: httpx.AsyncClient
) -> None:
    facebook = {"connection": "facebook", "email": "ada@example.com"}

    first = await tokens_for(http, url, await log_in(http, url, "social", facebook))
    second = await tokens_for(http, url, await log_in(http, url, "social", facebook))

    assert first["id"]["sub"] == second["id"]["sub"]
    assert first["id"]["sub"].startswith("facebook|")
    assert tenant.logins_count(first["id"]["sub"]) == 2


async def test_login_without_an_invitation_calls_no_webhook(
    url: str, http: httpx.AsyncClient, invites_api: InvitesApi
) -> None:
    tokens = await tokens_for(http, url, await log_in(http, url, "signup", SIGNUP))

    assert invites_api.requests == []
    assert not [claim for claim in tokens["id"] if claim.startswith(NS)]
    assert tokens["access"]["permissions"] == []


# -- what the Action decides -----------------------------------------------------------------


def action_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "post-login.js"
    path.write_text(f"exports.onExecutePostLogin = async (event, api) => {{ {body} }};\n")
    return path


async def test_a_denying_action_shows_access_denied_and_issues_no_code(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    tenant = Auth0Fake(action=action_file(tmp_path, 'api.access.deny("Invitations only");'))
    async with tenant.serve() as url:
        response = await log_in(http, url, "signup", SIGNUP)

    assert response.status_code == 403
    assert "Access denied" in response.text
    assert "Invitations only" in response.text
    assert "error=access_denied" in response.text


async def test_an_action_past_its_deadline_fails_the_login(tmp_path: Path, http: httpx.AsyncClient) -> None:
    hang = action_file(tmp_path, "await new Promise(() => setInterval(() => {}, 1000));")
    tenant = Auth0Fake(action=hang, action_timeout=0.5)
    async with tenant.serve() as url:
        response = await log_in(http, url, "signup", SIGNUP)

    assert response.status_code == 500
    assert "did not finish within 0.5 s" in response.text


async def test_the_action_sees_auth0s_event(tmp_path: Path, http: httpx.AsyncClient) -> None:
    echo = action_file(
        tmp_path,
        'api.idToken.setCustomClaim("https://t/event", {query: event.request.query, '
        "user: event.user.email, connection: event.connection, stats: event.stats, "
        "transaction: event.transaction, secrets: Object.keys(event.secrets).sort()});"
        'api.user.setAppMetadata("seen", true);',
    )
    tenant = Auth0Fake(action=echo, claim_namespace="https://t/")
    async with tenant.serve() as url:
        response = await log_in(http, url, "signup", SIGNUP, invitation=TOKEN, login_hint="ada@example.com")
        tokens = await tokens_for(http, url, response)

    event = tokens["id"]["https://t/event"]
    assert event["query"]["invitation"] == TOKEN
    assert event["query"]["login_hint"] == "ada@example.com"
    assert event["user"] == "ada@example.com"
    assert event["connection"]["name"] == "Username-Password-Authentication"
    assert event["stats"] == {"logins_count": 1}
    assert event["transaction"]["protocol"] == "oidc-basic-profile"
    assert event["transaction"]["prompt"] == []
    assert event["transaction"]["requested_scopes"] == ["openid", "profile", "email"]
    assert event["transaction"]["redirect_uri"] == CALLBACK
    assert event["secrets"] == ["INVITES_CLAIM_NAMESPACE", "INVITES_WEBHOOK_SECRET", "INVITES_WEBHOOK_URL"]
    assert tenant.user(tokens["id"]["sub"])["app_metadata"] == {"seen": True}


async def test_without_node_the_page_says_so_and_creates_no_user(http: httpx.AsyncClient) -> None:
    tenant = Auth0Fake(node="/nonexistent/node")
    async with tenant.serve() as url:
        _, page = await login_page(http, url)
        response = await log_in(http, url, "signup", SIGNUP)

    assert NODE_MISSING in page.text
    assert response.status_code == 503
    assert NODE_MISSING in response.text
    assert tenant.tenant.users == {}


# -- /oauth/token ----------------------------------------------------------------------------


async def test_a_code_is_exchanged_once(url: str, http: httpx.AsyncClient) -> None:
    code = code_of(await log_in(http, url, "signup", SIGNUP))

    first = await exchange(http, url, code)
    second = await exchange(http, url, code)

    assert first.status_code == 200
    assert (second.status_code, second.json()["error"]) == (403, "invalid_grant")


async def test_a_code_needs_the_right_client_and_redirect_uri(url: str, http: httpx.AsyncClient) -> None:
    wrong_secret = await exchange(
        http, url, code_of(await log_in(http, url, "signup", SIGNUP)), client_secret="x"
    )
    other_callback = await exchange(
        http,
        url,
        code_of(await log_in(http, url, "login", SIGNUP)),
        redirect_uri="http://evil.test/cb",
    )

    assert (wrong_secret.status_code, wrong_secret.json()["error"]) == (401, "access_denied")
    assert (other_callback.status_code, other_callback.json()["error"]) == (403, "invalid_grant")


async def test_a_public_client_proves_its_code_with_pkce(url: str, http: httpx.AsyncClient) -> None:
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    pkce = {"code_challenge": challenge, "code_challenge_method": "S256"}

    async def public_exchange(code: str, code_verifier: str) -> httpx.Response:
        grant = {"grant_type": "authorization_code", "client_id": DEV_CLIENT_ID, "code": code}
        return await http.post(f"{url}/oauth/token", data={**grant, "code_verifier": code_verifier})

    bad = await public_exchange(code_of(await log_in(http, url, "signup", SIGNUP, **pkce)), "x" * 50)
    good = await public_exchange(code_of(await log_in(http, url, "login", SIGNUP, **pkce)), verifier)

    assert bad.json() == {"error": "invalid_grant", "error_description": "Failed to verify code verifier"}
    assert good.status_code == 200, good.text


def password_grant(**fields: str) -> dict[str, str]:
    """The resource-owner password grant's form for ada@example.com, with `fields` changed or added."""
    return {
        "grant_type": "password",
        "username": "ada@example.com",
        "password": PASSWORD,
        "audience": API_AUDIENCE,
        "client_id": DEV_CLIENT_ID,
        "client_secret": DEV_CLIENT_SECRET,
        **fields,
    }


async def test_password_grant_for_a_sandbox_user(
    tenant: Auth0Fake, url: str, http: httpx.AsyncClient
) -> None:
    user = tenant.create_user("ada@example.com", password=PASSWORD)
    good = await http.post(f"{url}/oauth/token", data=password_grant())
    bad = await http.post(f"{url}/oauth/token", json=password_grant(password="wrong-password"))

    assert good.status_code == 200, good.text
    access = await verified(url, good.json()["access_token"], API_AUDIENCE)
    assert (access["sub"], access["gty"]) == (user["user_id"], "password")
    assert (await verified(url, good.json()["id_token"], DEV_CLIENT_ID))["email"] == "ada@example.com"
    assert bad.status_code == 403
    assert bad.json() == {"error": "invalid_grant", "error_description": "Wrong email or password."}
    assert tenant.logins_count(user["user_id"]) == 1


async def test_the_password_grant_does_not_redeem_an_invitation_it_carries(
    tenant: Auth0Fake, url: str, http: httpx.AsyncClient, invites_api: InvitesApi
) -> None:
    user = tenant.create_user("ada@example.com", password=PASSWORD)
    grant = password_grant(scope="openid profile email", invitation=TOKEN)

    # The token in the URL's query and in the form: the real Action runs and redeems neither.
    answer = await http.post(f"{url}/oauth/token", params={"invitation": TOKEN}, data=grant)

    assert answer.status_code == 200, answer.text
    assert invites_api.requests == []
    access = await verified(url, answer.json()["access_token"], API_AUDIENCE)
    identity = await verified(url, answer.json()["id_token"], DEV_CLIENT_ID)
    assert not [claim for claim in (*access, *identity) if claim.startswith(NS)]
    assert access["permissions"] == []
    assert tenant.tenant.roles_of(user["user_id"]) == []
    assert tenant.logins_count(user["user_id"]) == 1

    # The same user and token through the universal login do redeem: the receiver counts calls.
    tokens = await tokens_for(http, url, await log_in(http, url, "login", SIGNUP, invitation=TOKEN))
    assert len(invites_api.requests) == 1
    assert tokens["id"][f"{NS}roles"] == ["member"]


async def test_the_password_grant_gives_the_action_auth0s_protocol_and_query(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    echo = action_file(
        tmp_path,
        'api.accessToken.setCustomClaim("https://t/event", {protocol: event.transaction.protocol, '
        "query: event.request.query, body: event.request.body, method: event.request.method});",
    )
    tenant = Auth0Fake(action=echo, claim_namespace="https://t/")
    tenant.create_user("ada@example.com", password=PASSWORD)
    grant = password_grant()
    async with tenant.serve() as url:
        answer = await http.post(f"{url}/oauth/token", params={"invitation": TOKEN}, data=grant)
        assert answer.status_code == 200, answer.text
        event = (await verified(url, answer.json()["access_token"], API_AUDIENCE))["https://t/event"]

    assert event["protocol"] == "oauth2-password"
    assert event["query"] == {"invitation": TOKEN}
    assert event["method"] == "POST"
    assert event["body"]["grant_type"] == "password"
    assert "password" not in event["body"]
    assert "client_secret" not in event["body"]


# -- userinfo, logout, restarts --------------------------------------------------------------


async def test_userinfo_and_logout(url: str, http: httpx.AsyncClient) -> None:
    tokens = await tokens_for(http, url, await log_in(http, url, "signup", SIGNUP))

    me = await http.get(f"{url}/userinfo", headers={"Authorization": f"Bearer {tokens['raw_access']}"})
    anonymous = await http.get(f"{url}/userinfo")
    out = await http.get(
        f"{url}/v2/logout", params={"returnTo": "http://app.test/", "client_id": DEV_CLIENT_ID}
    )

    assert me.status_code == 200
    assert me.json()["sub"] == tokens["id"]["sub"]
    assert me.json()["email"] == "ada@example.com"
    assert anonymous.status_code == 401
    assert (out.status_code, out.headers["location"]) == (302, "http://app.test/")


async def test_users_logins_and_keys_survive_a_restart(tmp_path: Path, http: httpx.AsyncClient) -> None:
    state = tmp_path / "auth0.json"
    async with Auth0Fake(state_path=state).serve() as first_url:
        before = await tokens_for(http, first_url, await log_in(http, first_url, "signup", SIGNUP))

    restarted = Auth0Fake(state_path=state)
    async with restarted.serve() as url:
        after = await tokens_for(http, url, await log_in(http, url, "login", SIGNUP))
        old_token_still_verifies = await verified(
            url, before["raw_access"], API_AUDIENCE, issuer=f"{first_url}/"
        )

    assert after["id"]["sub"] == before["id"]["sub"] == old_token_still_verifies["sub"]
    assert restarted.logins_count(after["id"]["sub"]) == 2
