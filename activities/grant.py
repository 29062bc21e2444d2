"""Version 4's grant: the roles, the profile write and our account link in one activity.

Three calls that a person waits for at login, run side by side in one activity instead of two
Auth0 activities and a local activity: the run ends one workflow task after the acceptance
instead of two or three, with four to seven events and two billable actions fewer in its
history.

The price is the retry unit. Every part runs to its end; when one failed and may succeed later,
the whole activity is retried, and the parts that had succeeded find their work done (roles
already held are not assigned again, a profile already written is not PATCHed again, the link
is keyed): a retry repeats their reads, not their writes. A retry links first and calls Auth0
only once the link is written (or refused for good), so while our database is away no attempt
reaches Auth0. Only when every failure is final does the activity fail for good, with the first
of them.
"""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.auth0 import Auth0Activities
from activities.heartbeat import heartbeating
from activities.store import StoreActivities
from invites.models import AssignRolesResult, GrantInput, GrantResult
from invites.temporal import GRANT_ACTIVITY


class GrantActivities:
    def __init__(self, auth0: Auth0Activities, store: StoreActivities):
        self._auth0 = auth0
        self._store = store

    @activity.defn(name=GRANT_ACTIVITY)
    async def grant_access(self, inp: GrantInput) -> GrantResult:
        """Assign the roles, write the profile, link the account; each part idempotent."""
        async with heartbeating():
            if activity.info().attempt == 1:
                roles, verified, linked = await asyncio.gather(
                    self._assign(inp),
                    self._auth0.update_profile(inp.profile),
                    self._store.link_account(inp.link),
                    return_exceptions=True,
                )
            else:
                # A retry links first: while the database is away that fails again at once, and
                # Auth0 is not asked again for parts that are done or wait on Auth0 themselves.
                linked: bool | BaseException
                try:
                    linked = await self._store.link_account(inp.link)
                except Exception as err:
                    if may_pass(err):
                        raise
                    linked = err  # final (held by another account): the other parts still run
                roles, verified = await asyncio.gather(
                    self._assign(inp), self._auth0.update_profile(inp.profile), return_exceptions=True
                )
        failures = [o for o in (roles, verified, linked) if isinstance(o, BaseException)]
        if failures:
            raise failure_to_report(failures)
        assert not isinstance(roles, BaseException)  # narrowed above, for the type checker
        return GrantResult(roles=roles, email_verified=bool(verified), linked=bool(linked))

    async def _assign(self, inp: GrantInput) -> AssignRolesResult | None:
        return await self._auth0.assign_roles(inp.roles) if inp.roles else None


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
