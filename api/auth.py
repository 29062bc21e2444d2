"""Who is calling: Auth0 access tokens (RS256, JWKS) or static API keys (`INVITES_API_KEYS`).

401 when credentials are missing or invalid, 403 when they lack the route's permission.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import jwt
from fastapi import Request
from jwt import PyJWK, PyJWKSet

from api.errors import ApiError
from invites.settings import Settings

CREATE, READ, MANAGE = "create:invitations", "read:invitations", "manage:invitations"
ALGORITHMS = ["RS256"]
JWKS_CACHE_S = 600.0
# A token naming a key id we do not have forces a JWKS refetch at most this often.
JWKS_REFETCH_COOLDOWN_S = 10.0
JWKS_TIMEOUT_S = 5.0
log = logging.getLogger("invites.api.auth")


@dataclass(frozen=True)
class Principal:
    kind: str  # "api_key" | "user"
    subject: str | None  # the Auth0 user id (`sub`) for access tokens
    permissions: frozenset[str]


class Authenticator:
    """Verifies credentials; one per app (the JWKS cache lives here)."""

    def __init__(self, settings: Settings, jwks: Jwks | None = None):
        self._keys = settings.api_key_permissions
        self._audience = settings.api_audience
        self._issuer = settings.auth0_issuer
        self._jwks = jwks or Jwks(settings.jwks_url)
        self._m2m_scope = settings.scope_permissions_for_m2m

    async def principal(self, request: Request) -> Principal:
        credential = _credential(request)
        if credential is None:
            raise ApiError(
                401,
                "unauthorized",
                "Send an API key or an access token (Authorization: Bearer).",
                {"WWW-Authenticate": "Bearer"},
            )
        if credential.count(".") == 2:
            return await self._from_jwt(credential)
        for key, permissions in self._keys.items():
            if hmac.compare_digest(key.encode(), credential.encode()):
                return Principal("api_key", None, permissions)
        raise ApiError(401, "unauthorized", "The API key is not valid.", {"WWW-Authenticate": "Bearer"})

    async def _from_jwt(self, token: str) -> Principal:
        try:
            signing_key = await self._jwks.signing_key(jwt.get_unverified_header(token).get("kid"))
            claims = jwt.decode(
                token,
                signing_key.key,
                algorithms=ALGORITHMS,
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWKClientConnectionError:
            raise ApiError(
                503, "unavailable", "The signing keys cannot be fetched; retry shortly.", {"Retry-After": "5"}
            ) from None
        except (jwt.PyJWTError, jwt.PyJWKClientError) as exc:
            raise _invalid_token(_reason(exc)) from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise _invalid_token("no subject")
        listed = claims.get("permissions")
        permissions = {p for p in listed if isinstance(p, str)} if isinstance(listed, list) else set()
        # Never a user's `scope`: with RBAC off in the API, anyone who signs up could ask for
        # `manage:invitations`. A client-credentials token's scope only when allowed.
        scope = claims.get("scope")
        if self._m2m_scope and claims.get("gty") == "client-credentials" and isinstance(scope, str):
            permissions.update(scope.split())
        return Principal("user", subject, frozenset(permissions))


class Jwks:
    """The tenant's public signing keys (`/.well-known/jwks.json`), cached for `lifespan`.

    After a rotation Auth0 signs with the new key at once, so a token naming a key id we lack
    forces a refetch; at most once per `cooldown`, so a flood of made-up key ids costs one
    fetch, not one each. A key dropped from the JWKS stops verifying at the next refresh. When
    a refresh fails the keys we have keep verifying; with none at all the caller answers 503.
    """

    def __init__(
        self,
        url: str,
        *,
        lifespan: float = JWKS_CACHE_S,
        cooldown: float = JWKS_REFETCH_COOLDOWN_S,
        timeout: float = JWKS_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url, self._lifespan, self._cooldown, self._timeout = url, lifespan, cooldown, timeout
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fresh_until = float("-inf")
        self._next_forced = float("-inf")
        self._lock = asyncio.Lock()  # one fetch at a time; concurrent callers share its result

    async def signing_key(self, kid: object) -> PyJWK:
        if not isinstance(kid, str) or not kid:
            raise jwt.PyJWKClientError("the token names no signing key")
        async with self._lock:
            now = self._clock()
            if now >= self._fresh_until:
                await self._refresh(now)
            elif kid not in self._keys and now >= self._next_forced:
                self._next_forced = now + self._cooldown
                await self._refresh(now)
        if not self._keys:
            raise jwt.PyJWKClientConnectionError("the signing keys could not be fetched yet")
        key = self._keys.get(kid)
        if key is None:
            raise jwt.PyJWKClientError(f"no signing key {kid!r}")
        return key

    async def _refresh(self, now: float) -> None:
        try:
            async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as http:
                response = await http.get(self._url)
                response.raise_for_status()
                key_set = PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            # Retry after the cooldown, not on every request while the tenant is unreachable.
            self._fresh_until = now + min(self._cooldown, self._lifespan)
            if not self._keys:
                raise jwt.PyJWKClientConnectionError(f"JWKS fetch failed: {type(exc).__name__}") from exc
            log.warning("JWKS refresh failed (%s); verifying with the cached keys", type(exc).__name__)
            return
        self._keys = {k.key_id: k for k in key_set.keys if k.key_id and k.public_key_use in ("sig", None)}
        self._fresh_until = now + self._lifespan


def require(principal: Principal, permission: str) -> Principal:
    if permission not in principal.permissions:
        raise ApiError(403, "forbidden", f"This credential lacks the '{permission}' permission.")
    return principal


def _credential(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key") or None


def _invalid_token(reason: str) -> ApiError:
    return ApiError(
        401,
        "invalid_token",
        f"The access token is not valid: {reason}.",
        {"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def _reason(exc: Exception) -> str:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "it has expired"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "wrong audience"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "wrong issuer"
    if isinstance(exc, jwt.PyJWKClientError):
        return "unknown signing key"
    return "bad signature or format"
