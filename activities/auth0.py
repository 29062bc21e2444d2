"""Auth0 Management API activities, through auth0-python's `AsyncAuth0`.

Run on their own task queue with a per-second ceiling (Auth0 allows ~2 requests/s on small
plans). The client-credentials token and the role ids are fetched once and cached. Every
activity is idempotent: a retry after a crash leaves one result.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
from auth0.management import AsyncAuth0
from auth0.management.core.api_error import ApiError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import http_error
from activities.heartbeat import heartbeating
from invites.models import (
    AssignRolesInput,
    AssignRolesResult,
    LookupInput,
    LookupResult,
    MergeMetadataInput,
    VerifyEmailInput,
)
from invites.settings import Settings

T = TypeVar("T")
SERVICE = "Auth0"
TOKEN_LEEWAY_S = 60  # refresh the management token a minute before it expires


class ClientCredentialsToken:
    """The Management API token from `POST /oauth/token`, fetched once and refreshed early.

    auth0-python's own token provider builds `https://{domain}` URLs; this one takes the base
    URL from settings so the same code reaches a tenant or the local sandbox.
    """

    def __init__(self, http: httpx.AsyncClient, base_url: str, client_id: str, secret: str, audience: str):
        self._http, self._url = http, base_url.rstrip("/") + "/oauth/token"
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "audience": audience,
        }
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def __call__(self) -> str:
        if self._token and time.monotonic() < self._expires_at:
            return self._token
        async with self._lock:
            if self._token and time.monotonic() < self._expires_at:
                return self._token
            try:
                response = await self._http.post(self._url, data=self._form)
            except httpx.HTTPError as exc:
                raise http_error(SERVICE, None, None, f"token request failed: {type(exc).__name__}") from exc
            if response.status_code != 200:
                raise http_error(SERVICE, response.status_code, response.headers, "token request refused")
            body = response.json()
            self._token = body["access_token"]
            self._expires_at = time.monotonic() + float(body.get("expires_in", 86400)) - TOKEN_LEEWAY_S
            return self._token

    def invalidate(self) -> None:
        self._token = None


def build_auth0_client(
    settings: Settings, http: httpx.AsyncClient
) -> tuple[AsyncAuth0, ClientCredentialsToken]:
    token = ClientCredentialsToken(
        http,
        settings.auth0_base_url,
        settings.auth0_client_id,
        settings.auth0_client_secret.get_secret_value(),
        settings.auth0_audience,
    )
    client = AsyncAuth0(
        base_url=settings.auth0_base_url.rstrip("/") + "/api/v2",
        token="",  # replaced per request by async_token
        async_token=token,
        max_retries=0,  # Temporal retries, durably and honouring Retry-After
        timeout=settings.auth0_timeout,
        httpx_client=http,
    )
    return client, token


class RoleDirectory:
    """Role names -> ids, resolved once per name and cached for the worker's life."""

    def __init__(self, client: AsyncAuth0):
        self._client = client
        self._ids: dict[str, str] = {}

    async def ids_for(self, names: list[str]) -> dict[str, str]:
        missing = [n for n in names if n not in self._ids]
        for name in missing:
            pager = await self._client.roles.list(name_filter=name, per_page=50)
            async for role in pager:
                if role.name and role.id:
                    self._ids[role.name] = role.id
        unknown = [n for n in names if n not in self._ids]
        if unknown:
            raise ApplicationError(
                f"Auth0 has no role named {', '.join(unknown)}", type="Auth0UnknownRole", non_retryable=True
            )
        return {n: self._ids[n] for n in names}


class Auth0Activities:
    def __init__(self, client: AsyncAuth0, token: ClientCredentialsToken):
        self._client = client
        self._token = token
        self._roles = RoleDirectory(client)

    @activity.defn
    async def find_users_by_email(self, inp: LookupInput) -> LookupResult:
        """Accounts that already use the address (decides sign-up vs log-in)."""
        # users-by-email is case-sensitive and Auth0 stores addresses lower-cased.
        users = await self._call(
            lambda: self._client.users.list_users_by_email(email=inp.email.strip().lower())
        )
        return LookupResult(user_ids=[u.user_id for u in users if u.user_id])

    @activity.defn
    async def assign_roles(self, inp: AssignRolesInput) -> AssignRolesResult:
        """Assign the roles the user does not hold yet (so a retry assigns nothing twice)."""
        if not inp.roles:
            return AssignRolesResult(assigned=[], already_had=[])
        wanted = await self._call(lambda: self._roles.ids_for(inp.roles))
        held = await self._call(lambda: self._held_role_ids(inp.user_id))
        missing = [name for name, role_id in wanted.items() if role_id not in held]
        if missing:
            await self._call(
                lambda: self._client.users.roles.assign(inp.user_id, roles=[wanted[n] for n in missing])
            )
        return AssignRolesResult(assigned=missing, already_had=[n for n in wanted if n not in missing])

    @activity.defn
    async def merge_app_metadata(self, inp: MergeMetadataInput) -> None:
        """Add `{id, accepted_at}` to `app_metadata.invitations` and merge the invitation's payload."""
        user = await self._call(lambda: self._client.users.get(inp.user_id, fields="app_metadata"))
        current: dict[str, Any] = dict(getattr(user, "app_metadata", None) or {})
        invitations = [i for i in current.get("invitations") or [] if isinstance(i, dict)]
        if not any(i.get("id") == inp.invitation_id for i in invitations):
            invitations.append({"id": inp.invitation_id, "accepted_at": inp.accepted_at.isoformat()})
        # Auth0 merges app_metadata at the top level, so only our keys are sent.
        patch = {**inp.app_metadata, "invitations": invitations}
        await self._call(lambda: self._client.users.update(inp.user_id, app_metadata=patch))

    @activity.defn
    async def mark_email_verified(self, inp: VerifyEmailInput) -> bool:
        """Mark the address verified: the invitation mail proved the person reads it."""
        user = await self._call(lambda: self._client.users.get(inp.user_id, fields="email,email_verified"))
        if (user.email or "").casefold() != inp.email.casefold():
            return False
        if not user.email_verified:
            await self._call(lambda: self._client.users.update(inp.user_id, email_verified=True))
        return True

    async def _held_role_ids(self, user_id: str) -> set[str]:
        pager = await self._client.users.roles.list(user_id, per_page=100)
        return {role.id async for role in pager if role.id}

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            async with heartbeating():
                return await fn()
        except ApiError as exc:
            if exc.status_code == 401:
                self._token.invalidate()  # a rotated secret or revoked token: fetch anew next time
            raise http_error(
                SERVICE,
                exc.status_code,
                exc.headers,
                _auth0_message(exc.body),
                not_found_type="Auth0UserNotFound",
            ) from None
        except httpx.HTTPError as exc:
            raise http_error(SERVICE, None, None, type(exc).__name__) from None


def _auth0_message(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or "")
    return str(body or "")[:200]
