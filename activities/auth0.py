"""The Auth0 Management API calls the invitation's activities make, through auth0-python's
`AsyncAuth0`: the look-up before the first mail (`activities/first_mail.py`) and the grant's
roles and profile write (`activities/grant.py`).

The client-credentials token and the role ids are fetched once and cached. Every call is
idempotent (a retry leaves one result), and its failures come out as the typed errors of
`activities.errors`: non-retryable when Auth0 says a retry cannot succeed, with the next delay
when it says when to come back.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import httpx
from auth0.management.core.api_error import ApiError
from temporalio.exceptions import ApplicationError

from activities.errors import http_error
from activities.heartbeat import heartbeating
from invites.auth0 import Auth0Management, Auth0TokenError, UnknownRoles
from invites.redemption import same_email

T = TypeVar("T")
SERVICE = "Auth0"
# Auth0 refuses `email_verified` updates for enterprise and passwordless-SMS identities; these
# providers (and every social one) take it.
VERIFIABLE_PROVIDERS = frozenset({"auth0", "email"})
ROLES_PAGE = 100  # Auth0's maximum per page


class Auth0Users:
    def __init__(self, auth0: Auth0Management):
        self._client = auth0.client
        self._token = auth0.token
        self._roles = auth0.roles
        # Paced on the Auth0 queue (the tenant's ceiling, shared with the batched look-ups of
        # activities/lookups.py); unpaced for the grant, which a person waits for at login.
        self._pace = auth0.pace
        # One app_metadata read-modify-write at a time per account in this worker: a claim grants
        # several invitations of one account at once, and Auth0 has no conditional write (a lock
        # lives while a call holds or waits for it).
        self._metadata_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _metadata_lock(self, user_id: str) -> asyncio.Lock:
        lock = self._metadata_locks.get(user_id)
        if lock is None:
            lock = self._metadata_locks[user_id] = asyncio.Lock()
        return lock

    async def assign_roles(self, user_id: str, roles: list[str]) -> tuple[list[str], list[str]]:
        """Assign the roles the user does not hold yet, so a retry assigns nothing twice.
        Returns (assigned, already held)."""
        if not roles:
            return [], []
        wanted = await self._call(lambda: self._roles.ids_for(roles))
        held = await self._call(lambda: self._held_role_ids(user_id))
        missing = [name for name, role_id in wanted.items() if role_id not in held]
        if missing:
            await self._call(
                lambda: self._client.users.roles.assign(user_id, roles=[wanted[n] for n in missing])
            )
        return missing, [n for n in wanted if n not in missing]

    async def update_profile(
        self,
        user_id: str,
        invitation_id: str,
        accepted_at: datetime,
        app_metadata: dict[str, Any],
        verify_email: str | None,
        marks: dict[str, str] | None = None,
    ) -> bool:
        """Merge our keys into `app_metadata` (`invitations`, and the payload and `marks` under
        `invites`: see _metadata_patch) and, when `verify_email` is still the account's
        address, mark it verified: one read and at most one PATCH. True when the address is
        verified (now or already).

        No PATCH when the read shows it all written (a grant retried because another part
        failed): a retry repeats the read, not the write. A claim grants every pending invitation
        of the address side by side, each a read-modify-write of the same keys: in one worker
        they take turns (`_metadata_lock`); with `marks` (a token-less redeem) the write is also
        read back, and one that a grant in another worker wrote over is retried.
        """
        async with self._metadata_lock(user_id):
            return await self._update_profile(
                user_id, invitation_id, accepted_at, app_metadata, verify_email, marks
            )

    async def _update_profile(
        self,
        user_id: str,
        invitation_id: str,
        accepted_at: datetime,
        app_metadata: dict[str, Any],
        verify_email: str | None,
        marks: dict[str, str] | None,
    ) -> bool:
        fields = "app_metadata,email,email_verified,identities"
        user = await self._call(lambda: self._client.users.get(user_id, fields=fields))
        current = dict(getattr(user, "app_metadata", None) or {})
        metadata = _metadata_patch(current, invitation_id, accepted_at, app_metadata, marks or {})
        patch: dict[str, Any] = {}
        if any(current.get(key) != value for key, value in metadata.items()):
            patch["app_metadata"] = metadata
        verified = False
        if verify_email is not None and same_email(user.email, verify_email):
            verified = bool(user.email_verified) or _can_verify(user)
            if not user.email_verified and verified:
                patch["email_verified"] = True
        if patch:
            await self._call(lambda: self._client.users.update(user_id, **patch))
            if marks:
                await self._confirm_written(user_id, invitation_id)
        return verified

    async def _confirm_written(self, user_id: str, invitation_id: str) -> None:
        """Raise a retryable error when our `invitations` entry is not in app_metadata after the
        PATCH: a grant running beside this one wrote the keys from an older read."""
        user = await self._call(lambda: self._client.users.get(user_id, fields="app_metadata"))
        written = (getattr(user, "app_metadata", None) or {}).get("invitations") or []
        if not any(isinstance(i, dict) and i.get("id") == invitation_id for i in written):
            raise ApplicationError("app_metadata was written over by another grant", type="Auth0WriteLost")

    async def remove_roles(self, user_id: str, roles: list[str]) -> list[str]:
        """Remove those of `roles` the user still holds (a retry removes nothing twice); the
        ones removed. A deleted account holds nothing: nothing to remove."""
        if not roles:
            return []
        wanted = await self._call(lambda: self._roles.ids_for(roles))
        try:
            held = await self._call(lambda: self._held_role_ids(user_id))
        except ApplicationError as err:
            if err.type == "Auth0UserNotFound":
                return []
            raise
        present = [name for name, role_id in wanted.items() if role_id in held]
        if present:
            await self._call(
                lambda: self._client.users.roles.delete(user_id, roles=[wanted[n] for n in present])
            )
        return present

    async def remove_invitation_metadata(
        self, user_id: str, invitation_id: str, payload: dict[str, Any], kept: dict[str, Any]
    ) -> bool:
        """Take one invitation out of `app_metadata`: its `invitations` entry, and the keys of its
        payload in `invites.data` that still hold its values, unless another accepted invitation
        of the account (`kept`, their payloads merged) gives the same value. One read and at most
        one PATCH; True when this call removed something."""
        async with self._metadata_lock(user_id):
            try:
                user = await self._call(lambda: self._client.users.get(user_id, fields="app_metadata"))
            except ApplicationError as err:
                if err.type == "Auth0UserNotFound":
                    return False
                raise
            current = dict(getattr(user, "app_metadata", None) or {})
            patch = _metadata_without(current, invitation_id, payload, kept)
            if patch:
                await self._call(lambda: self._client.users.update(user_id, app_metadata=patch))
            return bool(patch)

    async def _held_role_ids(self, user_id: str) -> set[str]:
        """Every role the user holds. Page by page until a page comes back short: the SDK's pager
        asks for one more page after any page that was not empty, a third call in a row on the
        path a person waits for at login (a user holds a few roles: one page)."""
        held: set[str] = set()
        page = 0
        while True:
            listed = await self._client.users.roles.list(user_id, page=page, per_page=ROLES_PAGE)
            items = listed.items or []
            held |= {role.id for role in items if role.id}
            if len(items) < ROLES_PAGE:
                return held
            page += 1

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            async with heartbeating():
                if self._pace is not None:
                    await self._pace.take()
                return await fn()
        except UnknownRoles as exc:
            raise ApplicationError(str(exc), type="Auth0UnknownRole", non_retryable=True) from None
        except Auth0TokenError as exc:
            raise http_error(SERVICE, exc.status, exc.headers, "token request refused") from None
        except ApiError as exc:
            if exc.status_code == 401:
                self._token.invalidate()  # a rotated secret or revoked token: fetch anew next time
            failure = http_error(
                SERVICE,
                exc.status_code,
                exc.headers,
                _auth0_message(exc.body),
                not_found_type="Auth0UserNotFound",
            )
            if self._pace is not None and failure.next_retry_delay is not None:
                # Auth0 said when to come back: no paced call from this worker before then.
                self._pace.hold_until(time.monotonic() + failure.next_retry_delay.total_seconds())
            raise failure from None
        except httpx.HTTPError as exc:
            raise http_error(SERVICE, None, None, type(exc).__name__) from None


def _metadata_patch(
    current: dict[str, Any],
    invitation_id: str,
    accepted_at: datetime,
    app_metadata: dict[str, Any],
    marks: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Our keys of app_metadata: `invitations` with this one added once, and `invites` with the
    invitation's payload merged into `invites.data` (Auth0 merges app_metadata at the top level
    only, so just these two keys are sent, and `invites` is sent whole with its other keys kept).

    The payload never lands on another top-level key: whatever its keys are named, it cannot
    overwrite what others keep in app_metadata. With several invitations accepted, `data` holds
    their payloads merged, the later acceptance winning per key. `marks` (`status`, `claimed_at`)
    are set beside `data`.
    """
    invitations = [i for i in current.get("invitations") or [] if isinstance(i, dict)]
    if not any(i.get("id") == invitation_id for i in invitations):
        invitations.append({"id": invitation_id, "accepted_at": accepted_at.isoformat()})
    patch: dict[str, Any] = {"invitations": invitations}
    invites = current.get("invites")
    invites = dict(invites) if isinstance(invites, dict) else {}
    data = invites.get("data")
    data = dict(data) if isinstance(data, dict) else {}
    if app_metadata:
        invites["data"] = {**data, **app_metadata}
        patch["invites"] = invites
    if marks:
        invites.update(marks)
        patch["invites"] = invites
    return patch


def _metadata_without(
    current: dict[str, Any], invitation_id: str, payload: dict[str, Any], kept: dict[str, Any]
) -> dict[str, Any]:
    """The app_metadata keys to PATCH so that one invitation is gone from them; {} when it is."""
    patch: dict[str, Any] = {}
    invitations = [i for i in current.get("invitations") or [] if isinstance(i, dict)]
    remaining = [i for i in invitations if i.get("id") != invitation_id]
    if len(remaining) != len(invitations):
        patch["invitations"] = remaining
    invites = current.get("invites")
    data = invites.get("data") if isinstance(invites, dict) else None
    if isinstance(invites, dict) and isinstance(data, dict):
        gone = [k for k, v in payload.items() if k in data and data[k] == v and kept.get(k) != v]
        if gone:
            patch["invites"] = {**invites, "data": {k: v for k, v in data.items() if k not in gone}}
    return patch


def _can_verify(user: Any) -> bool:
    """Whether Auth0 takes `email_verified` for this account (its primary identity)."""
    identities = getattr(user, "identities", None) or []
    if not identities:
        return True  # no identities read: let Auth0 decide
    primary = identities[0]
    return bool(primary.is_social) or primary.provider in VERIFIABLE_PROVIDERS


def _auth0_message(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or "")
    return str(body or "")[:200]
