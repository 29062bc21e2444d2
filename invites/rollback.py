"""Rolling back an accepted invitation (ops: `POST /v1/invitations/{id}/rollback`, `invites rollback`).

An accepted invitation's run has ended, and a closed run takes no message. The rollback is a new
run of the same workflow under the same id, started from the accepted run's input and final
state: it starts `revoked` (no redeem takes it again), removes what the grant wrote and ends.
The invitation's id then names the rollback run, so reads, the Temporal UI and redeems all see
it; the accepted run stays in history, superseded (lists skip it: `invitations.latest_runs`).

Asking twice is safe: a rollback under way or done answers with its state, and the activity
removes nothing twice.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from invites import temporal as names
from invites.ids import workflow_id
from invites.invitations import (
    STATE,
    InvitationBusy,
    InvitationNotFound,
    InvitationRejected,
    handle_for,
    initial_search_attributes,
)
from invites.models import InvitationInput, InvitationState, RollbackInput, Status
from invites.redemption import ENDED_REASON

NOT_ACCEPTED = "not_accepted"
# How long the call waits for the rollback to finish before answering with it under way.
SETTLE = timedelta(seconds=5)
# An accepted run still granting ends within seconds; past this the caller is asked to retry.
GRANT_WAIT = timedelta(seconds=10)


async def roll_back(client: Client, task_queue: str, invitation_id: str, reason: str) -> InvitationState:
    """Undo an accepted invitation's grant; its state, with `rollback` done or still pending.

    Raises InvitationNotFound, InvitationRejected (`not_accepted` while pending; the ended
    reason for an invitation that expired, was revoked or was undeliverable) or InvitationBusy
    (an acceptance whose grant has not finished yet).
    """
    handle = handle_for(client, invitation_id)
    try:
        described = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise InvitationNotFound(invitation_id) from None
        raise
    if described.status == WorkflowExecutionStatus.RUNNING:
        state = await handle.query(STATE, result_type=InvitationState)
        if state.rollback is not None:
            return await _settled(handle)
        if state.status == Status.PENDING:
            raise InvitationRejected(
                NOT_ACCEPTED, "The invitation is pending: nothing was granted. Revoke it instead."
            )
        # Accepted, the grant still running: roll back what it did once it is done.
        try:
            async with asyncio.timeout(GRANT_WAIT.total_seconds()):
                await handle.result()
        except TimeoutError:
            raise InvitationBusy(f"{invitation_id} is still granting; retry shortly") from None
    elif described.status != WorkflowExecutionStatus.COMPLETED:
        raise InvitationRejected(NOT_ACCEPTED, f"The invitation's run has {described.status.name.lower()}.")

    accepted = await handle.result()
    if accepted.rollback is not None:
        return accepted
    if accepted.status != Status.ACCEPTED:
        raise InvitationRejected(
            ENDED_REASON[accepted.status].value,
            f"The invitation is {accepted.status.value}: nothing was granted to roll back.",
        )
    original = await _started_with(client, handle)
    inp = original.model_copy(update={"rollback": RollbackInput(reason=reason, accepted=accepted)})
    started = await client.start_workflow(
        names.WORKFLOW_TYPE,
        inp,
        id=workflow_id(invitation_id),
        task_queue=task_queue,
        # A closed run may be followed by this one; a rollback already running is joined.
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=initial_search_attributes(inp, Status.REVOKED),
        static_summary=f"Rollback of invitation {invitation_id}",
        result_type=InvitationState,
    )
    return await _settled(started)


async def _started_with(client: Client, handle: WorkflowHandle[object, InvitationState]) -> InvitationInput:
    """The input the accepted run was started with (decoded like any payload: with the codec)."""
    async for event in handle.fetch_history_events():
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        [inp] = await client.data_converter.decode(payloads, [InvitationInput])
        return inp
    raise InvitationNotFound(handle.id.removeprefix("invitation-"))


async def _settled(handle: WorkflowHandle[object, InvitationState]) -> InvitationState:
    """The rollback's final state, or its state as it is after SETTLE (still under way)."""
    try:
        async with asyncio.timeout(SETTLE.total_seconds()):
            return await handle.result()
    except TimeoutError:
        return await handle.query(STATE, result_type=InvitationState)
