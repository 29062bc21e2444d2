"""Who may call: Auth0 access tokens (RS256 against the tenant's JWKS) and static API keys.

Every token here is signed by the Auth0 fake (or deliberately not); the API fetches the
fake's `/.well-known/jwks.json` over HTTP, as it would a real tenant's.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from api.app import create_app
from api.auth import Authenticator, Jwks
from invites.ids import new_invitation_id
from invites.invitations import handle_for
from invites.settings import DEV_API_KEY
from tests.support.api import Api, serve

READ = "read:invitations"
JWKS_ROUTE = "GET /.well-known/jwks.json"


def claims(api: Api, **over: Any) -> dict[str, Any]:
    """Valid access-token claims for this API, with `over` replacing (None: removing) some."""
    s = api.stack.settings
    now = int(time.time())
    base = {
        "iss": s.auth0_issuer,
        "aud": s.api_audience,
        "sub": "auth0|ops",
        "iat": now,
        "exp": now + 3600,
        "permissions": [READ],
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hs256_with_the_public_key(api: Api) -> str:
    """The classic RS256 → HS256 confusion: HMAC keyed with the tenant's public key (PEM)."""
    signing = api.stack.auth0.signing
    [published] = [k for k in signing.jwks()["keys"] if k["kid"] == signing.active_kid]
    public = RSAAlgorithm.from_jwk(json.dumps(published))  # what anyone can fetch from the JWKS
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": signing.active_kid}).encode())
    payload = b64(json.dumps(claims(api)).encode())
    mac = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(mac)}"


def unsigned(api: Api) -> str:
    header = b64(
        json.dumps({"alg": "none", "typ": "JWT", "kid": api.stack.auth0.signing.active_kid}).encode()
    )
    return f"{header}.{b64(json.dumps(claims(api)).encode())}."


def another_key_same_kid(api: Api) -> str:
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(
        claims(api), impostor, algorithm="RS256", headers={"kid": api.stack.auth0.signing.active_kid}
    )


BAD_TOKENS: dict[str, Callable[[Api], str]] = {
    "wrong-audience": lambda api: api.stack.auth0.signing.sign(claims(api, aud="https://other.example/api")),
    "wrong-issuer": lambda api: api.stack.auth0.signing.sign(claims(api, iss="https://evil.example/")),
    "expired": lambda api: api.stack.auth0.signing.sign(claims(api, exp=int(time.time()) - 60)),
    "unknown-kid": lambda api: api.stack.auth0.signing.sign(claims(api), kid="key-unknown"),
    "bad-signature": another_key_same_kid,
    "no-sub": lambda api: api.stack.auth0.signing.sign(claims(api, sub=None)),
    "empty-sub": lambda api: api.stack.auth0.signing.sign(claims(api, sub="")),
    "hs256-confusion": hs256_with_the_public_key,
    "alg-none": unsigned,
    "garbage": lambda api: "not.a.jwt",
}


async def read_unknown(api: Api, headers: dict[str, str]) -> httpx.Response:
    """A read that needs `read:invitations`: 404 (no such invitation) proves the caller got in."""
    return await api.http.get(f"/v1/invitations/{new_invitation_id()}", headers=headers)


async def test_a_valid_access_token_with_the_permissions_claim_reads(api: Api):
    response = await read_unknown(api, api.bearer(api.user_token("auth0|ops", permissions=[READ])))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_a_users_scope_grants_no_permission(api: Api):
    """With RBAC off in the Auth0 API, anyone who signs up can ask for any scope."""
    token = api.user_token("auth0|mallory", scope=f"openid profile {READ} manage:invitations")
    response = await read_unknown(api, api.bearer(token))
    assert (response.status_code, response.json()["error"]["code"]) == (403, "forbidden")


def m2m_token(api: Api) -> str:
    """A client-credentials token, as Auth0 issues one to a backend."""
    return api.user_token("funnel-client@clients", scope=READ, extra={"gty": "client-credentials"})


async def test_a_machine_tokens_scope_grants_no_permission_by_default(api: Api):
    assert (await read_unknown(api, api.bearer(m2m_token(api)))).status_code == 403


@pytest.mark.parametrize("settings_overrides", [{"scope_permissions_for_m2m": True}])
async def test_a_machine_tokens_scope_counts_when_allowed_and_a_users_still_does_not(api: Api):
    assert (await read_unknown(api, api.bearer(m2m_token(api)))).status_code == 404
    user = api.user_token("auth0|mallory", scope=READ)
    assert (await read_unknown(api, api.bearer(user))).status_code == 403


@pytest.mark.parametrize("kind", BAD_TOKENS)
async def test_an_invalid_access_token_is_401_invalid_token(api: Api, kind: str):
    # The signing key is published and cached before the bad token arrives.
    assert (await read_unknown(api, api.bearer(api.user_token("auth0|ops", [READ])))).status_code == 404
    response = await read_unknown(api, api.bearer(BAD_TOKENS[kind](api)))
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "invalid_token"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_token_without_the_permission_is_403(api: Api):
    token = api.user_token("auth0|funnel", permissions=["create:invitations"], scope="openid")
    response = await read_unknown(api, api.bearer(token))
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "forbidden",
        "message": "This credential lacks the 'read:invitations' permission.",
    }


@pytest.mark.parametrize("permissions", [7, "read:invitations", {"read:invitations": True}])
async def test_a_malformed_permissions_claim_grants_nothing_and_is_not_a_500(api: Api, permissions: Any):
    token = api.stack.auth0.signing.sign(claims(api, permissions=permissions))
    response = await read_unknown(api, api.bearer(token))
    assert (response.status_code, response.json()["error"]["code"]) == (403, "forbidden")


async def test_missing_and_unknown_credentials_are_401(api: Api):
    missing = await read_unknown(api, {})
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "unauthorized")
    assert missing.headers["www-authenticate"] == "Bearer"
    for headers in ({"Authorization": "Bearer not-a-key-we-issued"}, {"X-API-Key": "not-a-key-we-issued"}):
        response = await read_unknown(api, headers)
        assert (response.status_code, response.json()["error"]["code"]) == (401, "unauthorized")


async def test_the_api_key_also_works_in_the_x_api_key_header(api: Api):
    assert (await read_unknown(api, {"X-API-Key": DEV_API_KEY})).status_code == 404
    created = await api.http.post(
        "/v1/invitations", json={"email": "key@example.com"}, headers={"X-API-Key": DEV_API_KEY}
    )
    assert created.status_code == 201
    api.stack.handles.append(handle_for(api.stack.client, created.json()["id"]))


async def test_after_a_key_rotation_new_tokens_verify_at_once_and_old_ones_still_do(api: Api):
    signing = api.stack.auth0.signing
    old_token = api.user_token("auth0|ops", [READ])
    assert (await read_unknown(api, api.bearer(old_token))).status_code == 404  # JWKS fetched, cached

    new_kid = signing.rotate()  # the tenant signs with a new key; the old one stays published
    new_token = api.user_token("auth0|ops", [READ])
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    assert (await read_unknown(api, api.bearer(new_token))).status_code == 404  # refetched at once
    assert (await read_unknown(api, api.bearer(old_token))).status_code == 404
    assert api.stack.auth0.faults.count(JWKS_ROUTE) == 2


async def test_a_flood_of_made_up_key_ids_costs_at_most_one_jwks_fetch(api: Api):
    assert (await read_unknown(api, api.bearer(api.user_token("auth0|ops", [READ])))).status_code == 404
    for n in range(10):
        forged = api.stack.auth0.signing.sign(claims(api), kid=f"made-up-{n}")
        assert (await read_unknown(api, api.bearer(forged))).status_code == 401
    assert api.stack.auth0.faults.count(JWKS_ROUTE) <= 2  # the first fetch, one forced refetch


async def test_a_key_dropped_from_the_jwks_stops_verifying_once_the_cache_refreshes(api: Api):
    settings = api.stack.settings
    authenticator = Authenticator(settings, jwks=Jwks(settings.jwks_url, lifespan=0.2))
    app = create_app(settings, temporal=api.stack.client, authenticator=authenticator)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        old_token = api.user_token("auth0|ops", [READ])
        path = f"/v1/invitations/{new_invitation_id()}"
        assert (await http.get(path, headers=api.bearer(old_token))).status_code == 404
        api.stack.auth0.signing.rotate(keep_old=False)  # e.g. the old key leaked
        await asyncio.sleep(0.3)
        dropped = await http.get(path, headers=api.bearer(old_token))
        assert (dropped.status_code, dropped.json()["error"]["code"]) == (401, "invalid_token")
        fresh = api.user_token("auth0|ops", [READ])
        assert (await http.get(path, headers=api.bearer(fresh))).status_code == 404


async def test_unreachable_signing_keys_are_503_not_401(api: Api):
    api.stack.auth0.faults.status(JWKS_ROUTE, 503, times=5)
    response = await read_unknown(api, api.bearer(api.user_token("auth0|ops", [READ])))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert "retry-after" in response.headers
