"""Client-side operations on invitations, shared by the API, the CLI and the tests.

Each one is a single Temporal call (an update with a validator, a signal, a query) whose
typed rejection is mapped to `InvitationRejected(reason)`. A message cannot reach a closed
workflow, so where an ended invitation still has an answer (a retried redeem by the user who
accepted, a late redeem of an expired one) it is computed from the workflow's final state with
the same rules the validator uses.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from invites import temporal as names
from invites.codec import email_search_keys
from invites.ids import workflow_id
from invites.models import (
    ExtendInput,
    InvitationInput,
    InvitationState,
    Reason,
    RedeemInput,
    RedeemResult,
    ResendInput,
    RevokeInput,
    Status,
)
from invites.redemption import ENDED_REASON, MESSAGES, redeem_rejection
from invites.schemas import InvitationSummary
from invites.settings import Settings

# Names as registered by the workflow (the core does not import workflow code).
REDEEM, EXTEND, REVOKE, RESEND, STATE = "redeem", "extend", "revoke", "resend", "state"
_REASONS = {r.value for r in Reason}
# A query needs a worker to answer; past this the caller gets an error instead of hanging.
QUERY_TIMEOUT = timedelta(seconds=10)
# The Auth0 Action gives each webhook call 5 s (then retries once, same message). The `redeem`
# update answers once the grant is done or has failed; the API waits REDEEM_BUDGET for that,
# then reads the state for at most PENDING_QUERY_TIMEOUT: accepted by this user, it answers
# `grant: "pending"` (the workflow keeps granting durably); else InvitationBusy, a 503 the
# Action retries.
REDEEM_BUDGET = timedelta(seconds=3)
PENDING_QUERY_TIMEOUT = timedelta(seconds=1)


def initial_search_attributes(inp: InvitationInput) -> TypedSearchAttributes:
    pairs = [
        SearchAttributePair(names.STATUS, "pending"),
        SearchAttributePair(names.EMAIL, inp.email_search_value),
        SearchAttributePair(names.EXPIRES_AT, inp.expires_at),
    ]
    if inp.external_ref:
        pairs.append(SearchAttributePair(names.REF, inp.external_ref))
    return TypedSearchAttributes(pairs)


def summary(inp: InvitationInput) -> str:
    """The one-line static summary the Temporal UI shows (no personal data in it)."""
    roles = ", ".join(inp.roles) or "no roles"
    ref = f", ref {inp.external_ref}" if inp.external_ref else ""
    return f"Invitation {inp.invitation_id} ({roles}{ref}), expires {inp.expires_at:%Y-%m-%d %H:%M} UTC"


async def start_invitation(
    client: Client, task_queue: str, inp: InvitationInput
) -> tuple[WorkflowHandle, bool]:
    """Start the invitation's workflow, or find the one already running under its id.

    Returns the handle and whether this call started it. A repeated create (same
    `external_ref` or `Idempotency-Key`, hence the same id) reaches the existing run; an id
    whose run has closed is not started again.
    """
    try:
        handle = await client.start_workflow(
            names.WORKFLOW_TYPE,
            inp,
            id=workflow_id(inp.invitation_id),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=initial_search_attributes(inp),
            static_summary=summary(inp),
            result_type=InvitationState,
        )
    except WorkflowAlreadyStartedError:
        return handle_for(client, inp.invitation_id), False
    return handle, True


class InvitationNotFound(LookupError):
    def __init__(self, invitation_id: str) -> None:
        super().__init__(f"no invitation {invitation_id}")
        self.invitation_id = invitation_id


class InvitationBusy(Exception):
    """The invitation did not take the message in time (a burst past Temporal's limit of
    in-flight updates, or no worker): nothing is known to have changed; retry shortly."""


class InvitationRejected(Exception):
    """The invitation refused the operation; `reason` is one of `invites.models.Reason`."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        default = MESSAGES[Reason(reason)] if reason in _REASONS else reason
        super().__init__(message or default)
        self.reason = reason


def handle_for(client: Client, invitation_id: str) -> WorkflowHandle[Any, InvitationState]:
    return client.get_workflow_handle(workflow_id(invitation_id), result_type=InvitationState)


async def get_state(client: Client, invitation_id: str) -> InvitationState:
    """Current state: the query while running, the result once closed (no worker needed)."""
    handle = handle_for(client, invitation_id)
    try:
        description = await handle.describe()
    except RPCError as err:
        raise _not_found_or(err, invitation_id) from None
    if description.status == WorkflowExecutionStatus.COMPLETED:
        return await handle.result()
    return await handle.query(STATE, result_type=InvitationState, rpc_timeout=QUERY_TIMEOUT)


async def redeem(
    client: Client,
    invitation_id: str,
    req: RedeemInput,
    now: datetime | None = None,
    budget: timedelta = REDEEM_BUDGET,
) -> RedeemResult:
    """Redeem for the logged-in user; answers within `budget` (see REDEEM_BUDGET).

    Raises InvitationRejected (a reason code), InvitationNotFound, InvitationBusy.
    """
    handle = handle_for(client, invitation_id)
    try:
        async with asyncio.timeout(budget.total_seconds()):
            return await handle.execute_update(REDEEM, req, result_type=RedeemResult)
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        # The SDK reports a call cut short by the deadline as its own error, not a timeout.
        return await _still_granting(handle, invitation_id, req)
    except WorkflowUpdateFailedError as err:
        raise _rejection(err) from None
    except RPCError as err:
        if not await _is_closed(handle, err):
            raise _not_found_or(err, invitation_id) from None
    # The workflow has ended: answer from its final state with the validator's own rules.
    final = await _final_state(handle, invitation_id)
    reason = redeem_rejection(final, req, now or datetime.now(UTC))
    if reason is not None:
        raise InvitationRejected(reason.value)
    if final.status != Status.ACCEPTED:  # ended otherwise yet not rejected: cannot happen
        raise InvitationRejected(Reason.EXPIRED.value)
    return RedeemResult(invitation_id=final.invitation_id, roles=final.roles, grant=final.grant or "pending")


async def _still_granting(
    handle: WorkflowHandle[Any, InvitationState], invitation_id: str, req: RedeemInput
) -> RedeemResult:
    """The answer when the budget ran out: `grant: pending` with the invitation's roles when its
    state shows this user accepted it (the workflow keeps granting durably); else the redeem
    was not taken in time (InvitationBusy: a retry of the same redeem is safe)."""
    try:
        state = await handle.query(STATE, result_type=InvitationState, rpc_timeout=PENDING_QUERY_TIMEOUT)
    except (RPCError, WorkflowQueryFailedError, RPCTimeoutOrCancelledError):
        raise InvitationBusy(f"{invitation_id}: the redeem's outcome could not be read in time") from None
    if state.status != Status.ACCEPTED or state.accepted_by != req.user.user_id:
        raise InvitationBusy(f"{invitation_id} did not take the redeem in time")
    return RedeemResult(invitation_id=invitation_id, roles=state.roles, grant="pending")


async def extend(client: Client, invitation_id: str, expires_at: datetime) -> InvitationState:
    handle = handle_for(client, invitation_id)
    try:
        return await handle.execute_update(
            EXTEND, ExtendInput(expires_at=expires_at), result_type=InvitationState
        )
    except WorkflowUpdateFailedError as err:
        raise _rejection(err) from None
    except RPCError as err:
        if not await _is_closed(handle, err):
            raise _not_found_or(err, invitation_id) from None
    raise _ended(await _final_state(handle, invitation_id))


async def revoke(client: Client, invitation_id: str, reason: str = "") -> None:
    await _signal(client, invitation_id, REVOKE, RevokeInput(reason=reason))


async def resend(client: Client, invitation_id: str, rotate: bool = False) -> None:
    await _signal(client, invitation_id, RESEND, ResendInput(rotate=rotate))


async def _signal(client: Client, invitation_id: str, name: str, arg: Any) -> None:
    handle = handle_for(client, invitation_id)
    try:
        await handle.signal(name, arg)
    except RPCError as err:
        if not await _is_closed(handle, err):
            raise _not_found_or(err, invitation_id) from None
        raise _ended(await _final_state(handle, invitation_id)) from None


async def _final_state(handle: WorkflowHandle[Any, InvitationState], invitation_id: str) -> InvitationState:
    try:
        return await handle.result()
    except RPCError as err:
        raise _not_found_or(err, invitation_id) from None


def _ended(final: InvitationState) -> InvitationRejected:
    return InvitationRejected(ENDED_REASON[final.status].value)


def _rejection(err: WorkflowUpdateFailedError) -> Exception:
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type in _REASONS:
        return InvitationRejected(cause.type, cause.message)
    return err


async def _is_closed(handle: WorkflowHandle[Any, Any], err: RPCError) -> bool:
    """Whether a NOT_FOUND answer to a message means the workflow exists but has closed.

    Servers word this differently ("workflow execution already completed", "update ... not
    found"), so ask the server about the workflow instead of parsing the message.
    """
    if err.status != RPCStatusCode.NOT_FOUND:
        return False
    try:
        description = await handle.describe()
    except RPCError as describe_err:
        if describe_err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return description.status != WorkflowExecutionStatus.RUNNING


def _not_found_or(err: RPCError, invitation_id: str) -> Exception:
    if err.status == RPCStatusCode.NOT_FOUND:
        return InvitationNotFound(invitation_id)
    return err


def listed(execution: WorkflowExecution) -> InvitationSummary:
    """One row of a visibility listing (API list route, `invites list`): from the search
    attributes alone, so listing never needs a worker or decodes a payload."""
    attrs = execution.typed_search_attributes
    status = attrs.get(names.STATUS)
    return InvitationSummary(
        id=execution.id.removeprefix("invitation-"),
        email=attrs.get(names.EMAIL),
        status=Status(status) if status in Status._value2member_map_ else None,
        external_ref=attrs.get(names.REF),
        created_at=execution.start_time,
        expires_at=attrs.get(names.EXPIRES_AT),
        closed_at=execution.close_time,
    )


def list_query(settings: Settings, status: str | None, email: str | None, ref: str | None) -> str:
    """The visibility query for a list of invitations (API, CLI): the email is matched in the
    form the index holds it (lower-cased, or its keyed hashes when payloads are encrypted)."""
    clauses = [f'WorkflowType="{names.WORKFLOW_TYPE}"']
    if status:
        clauses.append(f'InvitationStatus="{status}"')
    if email:
        keys = email_search_keys(settings, email)
        either = " OR ".join(f'InvitationEmail="{key}"' for key in keys)
        clauses.append(f"({either})" if len(keys) > 1 else either)
    if ref:
        clauses.append(f'InvitationRef="{ref}"')
    return " AND ".join(clauses)
