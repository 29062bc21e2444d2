"""Steering a pending invitation from outside: revoke, resend, extend (the API and the CLI alike).

Each call first reads the invitation's state and refuses an ended one with its reason code,
so the caller hears why (`InvitationRejected`) rather than a signal that the workflow ignores.
Revoke and resend are signals, which a workflow applies asynchronously: the call then waits up to
SETTLE_WAIT_S for the state to show it and answers with the state it reads last (still pending
if the workflow has not applied it yet; it will, the signal is durable).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, timedelta

from temporalio.client import Client

from invites import invitations
from invites.invitations import InvitationRejected, get_state
from invites.models import InvitationState, Status
from invites.redemption import ENDED_REASON

SETTLE_WAIT_S = 2.0
SETTLE_POLL_S = 0.1


def only_pending(state: InvitationState, verb: str) -> InvitationState:
    """`state` when pending; otherwise refuse the operation (`verb`: "revoked") with its reason."""
    if state.status == Status.PENDING:
        return state
    hint = "." if state.status == Status.ACCEPTED else "; reissue it to invite the person again."
    raise InvitationRejected(
        ENDED_REASON[state.status].value,
        f"The invitation is {state.status.value}, so it cannot be {verb}{hint}",
    )


async def revoke(client: Client, invitation_id: str, reason: str) -> InvitationState:
    """Withdraw a pending invitation; its state once revoked (or still pending, see above)."""
    only_pending(await get_state(client, invitation_id), "revoked")
    await invitations.revoke(client, invitation_id, reason)
    state = await settled(client, invitation_id, lambda s: s.status != Status.PENDING)
    if state.status not in (Status.PENDING, Status.REVOKED):  # accepted or expired meanwhile
        only_pending(state, "revoked")
    return state


async def resend(client: Client, invitation_id: str, rotate: bool) -> InvitationState:
    """Send the invitation mail again (`rotate`: with a new link); its state once mailed."""
    before = only_pending(await get_state(client, invitation_id), "resent")
    await invitations.resend(client, invitation_id, rotate)
    return await settled(
        client, invitation_id, lambda s: s.mails_sent > before.mails_sent or s.status != Status.PENDING
    )


async def extend_by(client: Client, invitation_id: str, delta: timedelta) -> InvitationState:
    """Push the expiry `delta` later than it is now (the workflow refuses beyond 90 days from now)."""
    state = only_pending(await get_state(client, invitation_id), "extended")
    return await invitations.extend(client, invitation_id, state.expires_at.astimezone(UTC) + delta)


async def settled(
    client: Client, invitation_id: str, done: Callable[[InvitationState], bool]
) -> InvitationState:
    """The state once `done` holds for it, or as it is after SETTLE_WAIT_S."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_WAIT_S
    while True:
        state = await get_state(client, invitation_id)
        if done(state) or loop.time() >= deadline:
            return state
        await asyncio.sleep(SETTLE_POLL_S)
