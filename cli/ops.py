"""What the `invites` CLI does, without the printing: connect, list, read, steer, create.

It talks to Temporal and the database directly, with the worker's own settings, and goes through
the same core calls as the API (`invites.invitations`, `invites.creation`). Refusals come out as
`Refused(code)`, with the API's reason codes; a dependency that does not answer as `Unavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, timedelta

import httpx
from auth0.management.core.api_error import ApiError as Auth0ApiError
from sqlalchemy.exc import OperationalError
from temporalio.client import Client, RPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from invites import invitations
from invites.auth0 import Auth0Management, Auth0TokenError, UnknownRoles
from invites.creation import Created, Creator, IdempotencyConflict, MissingFunnelData, NotReissuable
from invites.db.engine import create_engine
from invites.db.migrate import upgrade
from invites.db.records import OutboxMail
from invites.db.store import Store
from invites.invitations import InvitationNotFound, InvitationRejected, get_state
from invites.models import InvitationState, Reason, Status
from invites.schemas import InvitationCreate, InvitationSummary
from invites.settings import Settings
from invites.temporal import build_temporal_client

# `list` asks each listed invitation for its state (for `accepted_by`) only up to this many rows.
STATE_LOOKUP_MAX = 50
STATE_LOOKUP_CONCURRENCY = 10
# A running invitation answers its state query through a worker; without one, give up on the
# extra column after this long rather than hang the listing.
STATE_LOOKUP_BUDGET_S = 10.0
# Signals are asynchronous: wait this long for the workflow to apply one before answering.
SETTLE_WAIT_S = 2.0
SETTLE_POLL_S = 0.1
MAILS_SHOWN = 50

ENDED = {
    Status.ACCEPTED: Reason.ALREADY_REDEEMED.value,
    Status.EXPIRED: Reason.EXPIRED.value,
    Status.REVOKED: Reason.REVOKED.value,
    Status.UNDELIVERABLE: Reason.UNDELIVERABLE.value,
}
_TRANSIENT_RPC = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.CANCELLED,
}


class Refused(Exception):
    """The operation was refused; `code` is the reason code the API would answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class Unavailable(Exception):
    """Temporal, the database or Auth0 did not answer: nothing was decided, try again."""


def refusal(exc: BaseException) -> Refused | None:
    """The typed refusals of the core, as reason codes; None for anything else."""
    if isinstance(exc, Refused):
        return exc
    if isinstance(exc, InvitationNotFound):
        return Refused("not_found", f"There is no invitation {exc.invitation_id}.")
    if isinstance(exc, InvitationRejected):
        return Refused(exc.reason, str(exc))
    if isinstance(exc, UnknownRoles):
        return Refused("unknown_role", f"{exc}; use role names that exist in the tenant.")
    if isinstance(exc, IdempotencyConflict):
        return Refused("idempotency_conflict", "This external_ref was used before with different values.")
    if isinstance(exc, NotReissuable):
        return Refused("not_reissuable", str(exc))
    if isinstance(exc, MissingFunnelData):
        return Refused("not_found", str(exc))
    return None


def unavailable(exc: BaseException) -> str | None:
    """What did not answer, as a sentence, when `exc` says a dependency is down; None otherwise."""
    if isinstance(exc, Unavailable):
        return str(exc)
    if isinstance(exc, RPCError) and exc.status in _TRANSIENT_RPC:
        return f"Temporal did not answer ({exc.status.name}); try again shortly."
    if isinstance(exc, RPCTimeoutOrCancelledError):
        return "Temporal did not answer in time; try again shortly."
    if isinstance(exc, OperationalError):
        return f"The database did not answer ({type(exc.orig or exc).__name__}); try again shortly."
    if isinstance(exc, httpx.HTTPError | Auth0TokenError):
        return "Auth0 did not answer; try again shortly."
    if isinstance(exc, Auth0ApiError) and (exc.status_code or 500) in (429, *range(500, 600)):
        return f"Auth0 answered {exc.status_code}; try again shortly."
    return None


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


async def list_invitations(ops: Ops, query: str, limit: int, *, with_state: bool) -> list[Listed]:
    summaries = [
        invitations.listed(execution)
        async for execution in ops.temporal.list_workflows(query, limit=limit, page_size=min(limit, 1000))
    ]
    states: dict[str, InvitationState] = {}
    if with_state and summaries:
        states = await _states(ops.temporal, [s.id for s in summaries])
    return [Listed(s, states.get(s.id)) for s in summaries]


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


# --- steer ----------------------------------------------------------------------------------


async def state_of(ops: Ops, invitation_id: str) -> InvitationState:
    return await get_state(ops.temporal, invitation_id)


def only_pending(state: InvitationState, verb: str) -> InvitationState:
    """Refuse an operation on an ended invitation with its reason code, as the API does."""
    if state.status == Status.PENDING:
        return state
    hint = "." if state.status == Status.ACCEPTED else "; reissue it to invite the person again."
    raise Refused(
        ENDED[state.status], f"The invitation is {state.status.value}, so it cannot be {verb}{hint}"
    )


async def revoke(ops: Ops, invitation_id: str, reason: str) -> InvitationState:
    only_pending(await state_of(ops, invitation_id), "revoked")
    await invitations.revoke(ops.temporal, invitation_id, reason)
    state = await settled(ops, invitation_id, lambda s: s.status != Status.PENDING)
    if state.status not in (Status.PENDING, Status.REVOKED):  # accepted or expired meanwhile
        only_pending(state, "revoked")
    return state


async def resend(ops: Ops, invitation_id: str, rotate: bool) -> InvitationState:
    before = only_pending(await state_of(ops, invitation_id), "resent")
    await invitations.resend(ops.temporal, invitation_id, rotate)
    return await settled(
        ops, invitation_id, lambda s: s.mails_sent > before.mails_sent or s.status != Status.PENDING
    )


async def extend(ops: Ops, invitation_id: str, days: int) -> InvitationState:
    """Push the expiry `days` later than it is now (the workflow caps it at 90 days from now)."""
    state = only_pending(await state_of(ops, invitation_id), "extended")
    new_expiry = state.expires_at.astimezone(UTC) + timedelta(days=days)
    return await invitations.extend(ops.temporal, invitation_id, new_expiry)


async def create(ops: Ops, body: InvitationCreate) -> Created:
    return await ops.creator.create(body)


async def reissue(ops: Ops, invitation_id: str) -> Created:
    return await ops.creator.reissue(invitation_id)


async def settled(ops: Ops, invitation_id: str, done: Callable[[InvitationState], bool]) -> InvitationState:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_WAIT_S
    while True:
        state = await state_of(ops, invitation_id)
        if done(state) or loop.time() >= deadline:
            return state
        await asyncio.sleep(SETTLE_POLL_S)
