"""Who is calling: Auth0 access tokens (RS256, JWKS) or static API keys (`INVITES_API_KEYS`).

401 when credentials are missing or invalid, 403 when they lack the route's permission.
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass

import jwt
from fastapi import Request
from jwt import PyJWKClient

from api.errors import ApiError
from invites.settings import Settings

CREATE, READ, MANAGE = "create:invitations", "read:invitations", "manage:invitations"
ALGORITHMS = ["RS256"]
JWKS_CACHE_S = 600


@dataclass(frozen=True)
class Principal:
    kind: str  # "api_key" | "user"
    subject: str | None  # the Auth0 user id (`sub`) for access tokens
    permissions: frozenset[str]


class Authenticator:
    """Verifies credentials; one per app (the JWKS cache lives here)."""

    def __init__(self, settings: Settings, jwks: PyJWKClient | None = None):
        self._keys = settings.api_key_permissions
        self._audience = settings.api_audience
        self._issuer = settings.auth0_issuer
        # PyJWKClient caches the key set and refetches it once when a token names an unknown
        # `kid` (key rotation), no more than once per cooldown.
        self._jwks = jwks or PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=JWKS_CACHE_S, timeout=5)

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
            signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
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
            raise ApiError(
                401,
                "invalid_token",
                f"The access token is not valid: {_reason(exc)}.",
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            ) from None
        permissions = set(claims.get("permissions") or [])
        permissions.update(str(claims.get("scope") or "").split())
        return Principal("user", str(claims["sub"]), frozenset(permissions))


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
