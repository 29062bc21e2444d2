"""The Auth0 Management API client, shared by the worker's activities and the API.

auth0-python's `AsyncAuth0` with: the base URL from settings (a tenant, or the local sandbox),
a client-credentials token fetched once and refreshed before it expires, the SDK's own retries
off (Temporal retries durably in the worker; the API answers 503), and a role directory that
resolves names to ids once.
"""

from __future__ import annotations

import asyncio
import copy
import math
import time
from collections.abc import Awaitable, Callable, Mapping

import httpx
from auth0.management import AsyncAuth0

from invites.settings import Settings

TOKEN_LEEWAY_S = 60  # refresh the management token a minute before it expires
ROLES_PER_PAGE = 50


class Auth0TokenError(Exception):
    """`POST /oauth/token` failed: `status` is None for a network error."""

    def __init__(self, status: int | None, headers: Mapping[str, str] | None, detail: str) -> None:
        super().__init__(f"Auth0 token request failed ({status or 'network'}): {detail}")
        self.status, self.headers = status, headers


class UnknownRoles(LookupError):
    def __init__(self, names: list[str]) -> None:
        super().__init__(f"Auth0 has no role named {', '.join(names)}")
        self.names = names


class ClientCredentialsToken:
    """The Management API token, fetched once and refreshed early (async-safe)."""

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
                raise Auth0TokenError(None, None, type(exc).__name__) from None
            if response.status_code != 200:
                raise Auth0TokenError(response.status_code, response.headers, "token request refused")
            body = response.json()
            self._token = body["access_token"]
            self._expires_at = time.monotonic() + float(body.get("expires_in", 86400)) - TOKEN_LEEWAY_S
            return self._token

    def invalidate(self) -> None:
        self._token = None


class CallPace:
    """At most `rate` calls a second, in bursts of up to one second's worth (at least one); and
    none before a time Auth0 named (`hold_until`, from a 429's `Retry-After`). The worker's
    calls on the Auth0 queue take turns under one (`INVITES_MAX_TASK_QUEUE_ACTIVITIES_PER_SECOND`)."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._rate = rate
        self._capacity = max(1.0, math.floor(rate))
        self._tokens = self._capacity
        self._clock, self._sleep = clock, sleep
        self._updated = clock()
        self._not_before = 0.0

    def hold_until(self, when: float) -> None:
        self._not_before = max(self._not_before, when)

    async def take(self) -> None:
        """Wait for the next call's turn and spend it."""
        while True:
            now = self._clock()
            self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            wait = max(self._not_before - now, 0.0 if self._tokens >= 1 else (1 - self._tokens) / self._rate)
            if wait <= 0:
                self._tokens -= 1
                return
            await self._sleep(wait)


class Auth0Management:
    """The SDK client, its token, and the role directory, built once per process."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient):
        self.pace: CallPace | None = None  # unpaced: the API, the CLI, the grant at login
        self.token = ClientCredentialsToken(
            http,
            settings.auth0_base_url,
            settings.auth0_client_id,
            settings.auth0_client_secret.get_secret_value(),
            settings.auth0_audience,
        )
        self.client = AsyncAuth0(
            base_url=settings.auth0_base_url.rstrip("/") + "/api/v2",
            token="",  # replaced per request by async_token
            async_token=self.token,
            max_retries=0,
            timeout=settings.auth0_timeout,
            httpx_client=http,
        )
        self.roles = RoleDirectory(self.client)

    def paced(self, pace: CallPace) -> Auth0Management:
        """The same client, token and roles, with calls that take turns under `pace`."""
        view = copy.copy(self)
        view.pace = pace
        return view


class RoleDirectory:
    """Role names -> ids, resolved once per name and cached for the process's life."""

    def __init__(self, client: AsyncAuth0):
        self._client = client
        self._ids: dict[str, str] = {}
        # One resolution at a time: the first rows of a bulk import all ask for the same role,
        # and one call answers them all.
        self._lock = asyncio.Lock()

    async def ids_for(self, names: list[str]) -> dict[str, str]:
        """Ids of the named roles; raises UnknownRoles naming the ones the tenant lacks."""
        if any(n not in self._ids for n in names):
            async with self._lock:
                for name in [n for n in names if n not in self._ids]:
                    await self._resolve(name)
        unknown = [n for n in names if n not in self._ids]
        if unknown:
            raise UnknownRoles(unknown)
        return {n: self._ids[n] for n in names}

    async def _resolve(self, name: str) -> None:
        """Page by page until a short page (the SDK's pager asks for one more, empty page)."""
        pager = await self._client.roles.list(name_filter=name, per_page=ROLES_PER_PAGE)
        while True:
            items = pager.items or []
            self._ids.update({role.name: role.id for role in items if role.name and role.id})
            if len(items) < ROLES_PER_PAGE or (pager := await pager.next_page()) is None:
                return
