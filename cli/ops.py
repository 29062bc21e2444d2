"""What the `invites` CLI does besides printing: connect, list, read mails, report failures.

It talks to Temporal and the database directly, with the worker's own settings, and goes through
the same core calls as the API (`invites.invitations`, `invites.steering`, `invites.creation`).
Refusals are reported through `invites.errors.refused`, with the API's reason codes and words;
`unavailable` says which dependency did not answer (nothing was decided: try again).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from sqlalchemy.exc import OperationalError
from temporalio.client import Client

from invites import errors, invitations
from invites.auth0 import Auth0Management
from invites.creation import Creator
from invites.db.engine import create_engine
from invites.db.migrate import upgrade
from invites.db.records import OutboxMail
from invites.db.store import Store
from invites.invitations import get_state
from invites.models import InvitationState
from invites.schemas import InvitationSummary
from invites.settings import Settings
from invites.temporal import build_temporal_client

# `list` asks each listed invitation for its state (for `accepted_by`) only up to this many rows.
STATE_LOOKUP_MAX = 50
STATE_LOOKUP_CONCURRENCY = 10
# A running invitation answers its state query through a worker; without one, give up on the
# extra column after this long rather than hang the listing.
STATE_LOOKUP_BUDGET_S = 10.0
MAILS_SHOWN = 50


class Unavailable(Exception):
    """Temporal, the database or Auth0 did not answer: nothing was decided, try again."""


def unavailable(exc: BaseException) -> str | None:
    """What did not answer, as a sentence, when `exc` says a dependency is down; None otherwise."""
    return str(exc) if isinstance(exc, Unavailable) else errors.unavailable(exc)


@dataclass
class Ops:
    """The connections one CLI command needs, built from the worker's settings."""

    settings: Settings
    temporal: Client
    store: Store | None = None
    auth0: Auth0Management | None = None

    @property
    def creator(self) -> Creator:
        if self.store is None or self.auth0 is None:
            raise RuntimeError("connect(..., database=True, auth0=True) is needed to create")
        return Creator(self.settings, self.temporal, self.store, self.auth0.roles)


@contextlib.asynccontextmanager
async def connect(settings: Settings, *, database: bool = False, auth0: bool = False) -> AsyncIterator[Ops]:
    """Temporal always; the database (migrated, as the API does at start) and Auth0 on request."""
    try:
        temporal = await build_temporal_client(settings)
    except RuntimeError as exc:  # the SDK's "Failed client connect: ..."
        cause = "connection refused" if "refused" in str(exc).lower() else str(exc)
        raise Unavailable(
            f"Cannot reach Temporal at {settings.temporal_address} ({cause}): is it running, "
            "and is INVITES_TEMPORAL_ADDRESS right?"
        ) from None
    async with contextlib.AsyncExitStack() as stack:
        ops = Ops(settings, temporal)
        if database:
            try:
                await upgrade(settings.database_url)
            except (OperationalError, OSError) as exc:
                raise Unavailable(f"Cannot open the database ({exc}): check INVITES_DATABASE_URL.") from None
            engine = create_engine(settings.database_url)
            stack.push_async_callback(engine.dispose)
            ops.store = Store(engine)
            stack.callback(ops.store.close)
        if auth0:
            http = await stack.enter_async_context(httpx.AsyncClient(timeout=settings.auth0_timeout))
            ops.auth0 = Auth0Management(settings, http)
        yield ops


# --- list -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    summary: InvitationSummary
    state: InvitationState | None  # asked only for short listings

    @property
    def email(self) -> str | None:
        if self.state is not None:
            return self.state.email
        email = self.summary.email
        # With payload encryption the attribute holds a keyed hash, not the address.
        return None if email is None or email.startswith("h1:") else email


@dataclass(frozen=True)
class Listing:
    rows: list[Listed]  # newest first by creation
    more: bool  # more invitations match than the limit: `rows` are visibility's first ones


async def list_invitations(ops: Ops, query: str, limit: int, *, with_state: bool) -> Listing:
    """Up to `limit` invitations matching `query`, newest first by creation (the run's start).

    Visibility cannot be asked for that order (ORDER BY is refused on SQL visibility): it lists
    running runs first, then closed ones by close time. So the listing takes visibility's first
    `limit` rows (and one more, to know whether more match) and sorts those. When more match,
    they are the first `limit` in visibility's order, not the `limit` newest: pending
    invitations come before ended ones, whatever their age.
    """
    fetched = [
        execution
        async for execution in ops.temporal.list_workflows(
            query, limit=limit + 1, page_size=min(limit + 1, 1000)
        )
    ]
    executions = fetched[:limit]
    summaries = [invitations.listed(e) for e in await invitations.latest_runs(ops.temporal, executions)]
    summaries.sort(key=_newest_first, reverse=True)
    states: dict[str, InvitationState] = {}
    if with_state and summaries:
        states = await _states(ops.temporal, [s.id for s in summaries])
    return Listing([Listed(s, states.get(s.id)) for s in summaries], more=len(fetched) > limit)


def _newest_first(summary: InvitationSummary) -> tuple[datetime, str]:
    """The sort key (reversed): creation time, then the id, so equal times keep one order."""
    return (summary.created_at or datetime.min.replace(tzinfo=UTC), summary.id)


async def _states(client: Client, ids: list[str]) -> dict[str, InvitationState]:
    """Each invitation's state, as many as answer within the budget (the rest stay unknown)."""
    found: dict[str, InvitationState] = {}
    gate = asyncio.Semaphore(STATE_LOOKUP_CONCURRENCY)

    async def one(invitation_id: str) -> None:
        async with gate:
            with contextlib.suppress(Exception):  # an extra column: never fail the listing for it
                found[invitation_id] = await get_state(client, invitation_id)

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(STATE_LOOKUP_BUDGET_S):
            await asyncio.gather(*(one(i) for i in ids))
    return found


# --- show -----------------------------------------------------------------------------------


async def mails_of(ops: Ops, invitation_id: str) -> list[OutboxMail]:
    """The mails sent for the invitation, oldest first (the store keeps one row per mail)."""
    if ops.store is None:
        return []
    mails = await ops.store.list_outbox(limit=MAILS_SHOWN, invitation_id=invitation_id)
    return sorted(mails, key=lambda m: (m.sent_at, m.id))
