"""The grant: the roles, the profile write and our account link, in one activity.

A person waits at login for these three calls, so they run side by side in one activity (one
round trip through Temporal, and the run ends one workflow task after it). The price is the
retry unit: every part runs to its end, and when one failed and may succeed later the whole
activity is retried. The parts that had succeeded then find their work done (roles already held
are not assigned again, a profile already written is not PATCHed again, the link is keyed), so
a retry repeats their reads, not their writes. A retry links first and calls Auth0 only once
the link is written (or refused for good): while our database is away no attempt reaches
Auth0. Only when every failure is final does the activity fail for good, with the first of them.
"""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.auth0 import Auth0Users
from activities.heartbeat import heartbeating
from invites.db.store import LinkConflict, Store
from invites.models import GrantInput, GrantResult
from invites.temporal import GRANT_ACTIVITY


class GrantActivities:
    def __init__(self, auth0: Auth0Users, store: Store):
        self._auth0 = auth0
        self._store = store

    @activity.defn(name=GRANT_ACTIVITY)
    async def grant_access(self, inp: GrantInput) -> GrantResult:
        """Assign the roles, write the profile, link the account; each part idempotent."""
        async with heartbeating():
            if activity.info().attempt == 1:
                roles, verified, linked = await asyncio.gather(
                    self._auth0.assign_roles(inp.user_id, inp.roles),
                    self._update_profile(inp),
                    self._link(inp),
                    return_exceptions=True,
                )
            else:
                # A retry links first: while the database is away that fails again at once, and
                # Auth0 is not asked again for parts that are done or wait on Auth0 themselves.
                linked: bool | BaseException
                try:
                    linked = await self._link(inp)
                except Exception as err:
                    if may_pass(err):
                        raise
                    linked = err  # final (held by another account): the other parts still run
                roles, verified = await asyncio.gather(
                    self._auth0.assign_roles(inp.user_id, inp.roles),
                    self._update_profile(inp),
                    return_exceptions=True,
                )
        failures = [o for o in (roles, verified, linked) if isinstance(o, BaseException)]
        if failures:
            raise failure_to_report(failures)
        assigned, already_had = roles  # type: ignore[misc]  # not an exception: checked above
        return GrantResult(
            assigned=assigned, already_had=already_had, email_verified=bool(verified), linked=bool(linked)
        )

    async def _update_profile(self, inp: GrantInput) -> bool:
        return await self._auth0.update_profile(
            inp.user_id,
            inp.invitation_id,
            inp.accepted_at,
            inp.app_metadata,
            inp.verify_email,
            inp.invites_marks,
        )

    async def _link(self, inp: GrantInput) -> bool:
        """Associate the Auth0 account with the invitation's funnel data (keyed: once)."""
        try:
            return await self._store.link_account(inp.invitation_id, inp.user_id, inp.email, inp.accepted_at)
        except LinkConflict as exc:
            # The workflow accepts one user only; another one here means data was edited by hand.
            raise ApplicationError(str(exc), type="LinkConflict", non_retryable=True) from None


def failure_to_report(failures: list[BaseException]) -> BaseException:
    """A failure that may pass first (the activity is retried; the longest delay a 429 asked
    for wins), else the first final one."""
    for failure in failures:
        if isinstance(failure, asyncio.CancelledError):
            return failure
    retryable = [f for f in failures if may_pass(f)]
    if not retryable:
        return failures[0]
    delays = [f.next_retry_delay for f in retryable if isinstance(f, ApplicationError) and f.next_retry_delay]
    if not delays:
        return retryable[0]
    longest = max(delays)
    return next(f for f in retryable if isinstance(f, ApplicationError) and f.next_retry_delay == longest)


def may_pass(failure: BaseException) -> bool:
    """Whether a retry may succeed: anything but a non-retryable ApplicationError."""
    return not (isinstance(failure, ApplicationError) and failure.non_retryable)
