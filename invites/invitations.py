"""Client-side operations on invitations, shared by the API, the CLI and the tests.

Each one is a single Temporal call (an update with a validator, a signal, a query) whose
typed rejection is mapped to `InvitationRejected(reason)`. A message cannot reach a closed
workflow, so where an ended invitation still has an answer (a retried redeem by the user who
accepted, a late redeem of an expired one) it is computed from the workflow's final state with
the same rules the validator uses.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
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
    GrantState,
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
# The Auth0 Action gives each webhook call 5 s (then retries once, same message). A redeem
# answers within REDEEM_BUDGET: the `redeem` update (accepted, or refused with a reason) and then
# the grant's outcome; an update not taken in time is InvitationBusy (a 503 the Action retries),
# a grant not done in time is `grant: "pending"` (the workflow keeps granting durably).
REDEEM_BUDGET = timedelta(seconds=3)
# Ids per visibility query when a list looks for rollback runs (latest_runs).
ROLLBACK_QUERY_IDS = 100


def initial_search_attributes(inp: InvitationInput, status: Status = Status.PENDING) -> TypedSearchAttributes:
    pairs = [
        SearchAttributePair(names.STATUS, status.value),
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
    deadline = asyncio.get_running_loop().time() + budget.total_seconds()
    try:
        async with asyncio.timeout(budget.total_seconds()):
            result = await handle.execute_update(REDEEM, req, result_type=RedeemResult)
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        # The SDK reports a call cut short by the deadline as its own error, not a timeout.
        raise InvitationBusy(f"{invitation_id} did not take the redeem in time") from None
    except WorkflowUpdateFailedError as err:
        raise _rejection(err) from None
    except RPCError as err:
        if not await _is_closed(handle, err):
            raise _not_found_or(err, invitation_id) from None
    else:
        if result.grant != "pending":
            return result
        return result.model_copy(update={"grant": await _grant_outcome(handle, deadline)})
    # The workflow has ended: answer from its final state with the validator's own rules.
    final = await _final_state(handle, invitation_id)
    reason = redeem_rejection(final, req, now or datetime.now(UTC))
    if reason is not None:
        raise InvitationRejected(reason.value)
    if final.status != Status.ACCEPTED:  # ended otherwise yet not rejected: cannot happen
        raise InvitationRejected(Reason.EXPIRED.value)
    return RedeemResult(invitation_id=final.invitation_id, roles=final.roles, grant=final.grant or "pending")


async def _grant_outcome(handle: WorkflowHandle[Any, InvitationState], deadline: float) -> GrantState:
    """The grant's outcome by `deadline`, else `pending` (the workflow keeps granting durably).

    `done` as soon as `grant_access` completes in the run's history: the workflow records that
    in its next task, which the person at login does not wait for. A run that closes first had
    a grant fail for good: its final state answers. Temporal's time-skipping test server cannot
    follow a running history; the run's end answers there.
    """
    try:
        async with asyncio.timeout_at(deadline):
            with contextlib.suppress(RPCError):  # a server that cannot follow: the run's end
                if await _grant_completed(handle):
                    return "done"
            return (await handle.result()).grant or "pending"
    except (TimeoutError, RPCError, WorkflowFailureError):
        return "pending"


async def _grant_completed(handle: WorkflowHandle[Any, InvitationState]) -> bool:
    """Follow the run's history until `grant_access` completes (True) or the run closes (False)."""
    grants: set[int] = set()
    async for event in handle.fetch_history_events(wait_new_event=True):
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if event.activity_task_scheduled_event_attributes.activity_type.name == names.GRANT_ACTIVITY:
                grants.add(event.event_id)
        elif (
            event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
            and event.activity_task_completed_event_attributes.scheduled_event_id in grants
        ):
            return True
    return False


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


async def latest_runs(client: Client, executions: list[WorkflowExecution]) -> list[WorkflowExecution]:
    """`executions` without the accepted runs a rollback has superseded (invites.rollback).

    A closed run's search attributes cannot change, so a rolled-back invitation's accepted run
    still reads `accepted` in visibility; its rollback run, under the same id, reads `revoked`.
    One visibility query per ROLLBACK_QUERY_IDS accepted rows finds those rollback runs.
    """
    accepted = [e.id for e in executions if e.typed_search_attributes.get(names.STATUS) == Status.ACCEPTED]
    superseded: set[str] = set()
    for i in range(0, len(accepted), ROLLBACK_QUERY_IDS):
        ids = ", ".join(f'"{workflow}"' for workflow in accepted[i : i + ROLLBACK_QUERY_IDS])
        query = f'{list_query_base()} AND InvitationStatus="revoked" AND WorkflowId IN ({ids})'
        superseded |= {e.id async for e in client.list_workflows(query)}
    return [
        e
        for e in executions
        if not (e.id in superseded and e.typed_search_attributes.get(names.STATUS) == Status.ACCEPTED)
    ]


def list_query_base() -> str:
    return f'WorkflowType="{names.WORKFLOW_TYPE}"'


def list_query(settings: Settings, status: str | None, email: str | None, ref: str | None) -> str:
    """The visibility query for a list of invitations (API, CLI): the email is matched in the
    form the index holds it (lower-cased, or its keyed hashes when payloads are encrypted)."""
    clauses = [list_query_base()]
    if status:
        clauses.append(f'InvitationStatus="{status}"')
    if email:
        keys = email_search_keys(settings, email)
        either = " OR ".join(f'InvitationEmail="{key}"' for key in keys)
        clauses.append(f"({either})" if len(keys) > 1 else either)
    if ref:
        clauses.append(f'InvitationRef="{ref}"')
    return " AND ".join(clauses)
