"""Auth0 Management API activities, through auth0-python's `AsyncAuth0`.

Run on their own task queue with a per-second ceiling (Auth0 allows ~2 requests/s on small
plans). The client-credentials token and the role ids are fetched once and cached. Every
activity is idempotent: a retry after a crash leaves one result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
from auth0.management.core.api_error import ApiError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import http_error
from activities.heartbeat import heartbeating
from invites.auth0 import Auth0Management, Auth0TokenError, UnknownRoles
from invites.models import (
    AssignRolesInput,
    AssignRolesResult,
    LookupInput,
    LookupResult,
    MergeMetadataInput,
    UpdateProfileInput,
    VerifyEmailInput,
)

T = TypeVar("T")
SERVICE = "Auth0"
# Auth0 refuses `email_verified` updates for enterprise and passwordless-SMS identities; these
# providers (and every social one) take it.
VERIFIABLE_PROVIDERS = frozenset({"auth0", "email"})


ROLES_PAGE = 100  # Auth0's maximum per page


class Auth0Activities:
    def __init__(self, auth0: Auth0Management):
        self._client = auth0.client
        self._token = auth0.token
        self._roles = auth0.roles

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
    async def update_profile(self, inp: UpdateProfileInput) -> bool:
        """Version 3's profile write: `merge_app_metadata` and `mark_email_verified` in one read
        and one PATCH. True when the address was marked verified (or already was).

        No PATCH when the read shows it all there already (a retry of version 4's grant call,
        say, after another part failed): a retry repeats the read, not the write."""
        fields = "app_metadata,email,email_verified,identities"
        user = await self._call(lambda: self._client.users.get(inp.user_id, fields=fields))
        current = dict(getattr(user, "app_metadata", None) or {})
        metadata = _metadata_patch(current, inp)
        patch: dict[str, Any] = {}
        if any(current.get(key) != value for key, value in metadata.items()):
            patch["app_metadata"] = metadata
        verified = False
        if inp.verify_email is not None and (user.email or "").casefold() == inp.verify_email.casefold():
            verified = bool(user.email_verified) or _can_verify(user)
            if not user.email_verified and verified:
                patch["email_verified"] = True
        if patch:
            await self._call(lambda: self._client.users.update(inp.user_id, **patch))
        return verified

    @activity.defn
    async def merge_app_metadata(self, inp: MergeMetadataInput) -> None:
        """Add `{id, accepted_at}` to `app_metadata.invitations` and merge the invitation's payload
        (versions 1 and 2; version 3 calls `update_profile`)."""
        user = await self._call(lambda: self._client.users.get(inp.user_id, fields="app_metadata"))
        patch = _metadata_patch(getattr(user, "app_metadata", None), inp)
        await self._call(lambda: self._client.users.update(inp.user_id, app_metadata=patch))

    @activity.defn
    async def mark_email_verified(self, inp: VerifyEmailInput) -> bool:
        """Mark the address verified: the invitation mail proved the person reads it (versions
        1 and 2)."""
        user = await self._call(lambda: self._client.users.get(inp.user_id, fields="email,email_verified"))
        if (user.email or "").casefold() != inp.email.casefold():
            return False
        if not user.email_verified:
            await self._call(lambda: self._client.users.update(inp.user_id, email_verified=True))
        return True

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
                return await fn()
        except UnknownRoles as exc:
            raise ApplicationError(str(exc), type="Auth0UnknownRole", non_retryable=True) from None
        except Auth0TokenError as exc:
            raise http_error(SERVICE, exc.status, exc.headers, "token request refused") from None
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


def _metadata_patch(current: Any, inp: MergeMetadataInput | UpdateProfileInput) -> dict[str, Any]:
    """Our keys of app_metadata: the invitation's payload and `invitations` with this one added
    once (Auth0 merges app_metadata at the top level, so only these keys are sent)."""
    invitations = [i for i in dict(current or {}).get("invitations") or [] if isinstance(i, dict)]
    if not any(i.get("id") == inp.invitation_id for i in invitations):
        invitations.append({"id": inp.invitation_id, "accepted_at": inp.accepted_at.isoformat()})
    return {**inp.app_metadata, "invitations": invitations}


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
