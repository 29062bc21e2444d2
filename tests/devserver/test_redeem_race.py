"""Two people redeem the same link at once (real dev server): exactly one of them wins.

The race is staged, not hoped for: with no worker running, the server admits both redeems and
holds them, so they reach the workflow in one workflow task. Both validators run before either
handler, so both see `pending`: the first handler accepts, the second is told
`already_redeemed`, and only the winner is linked and granted. The time-skipping server does not
hold updates for a stopped worker the same way, so this runs on the dev server.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import UpdateWorkflowExecutionLifecycleStage
from temporalio.api.update.v1 import UpdateRef, WaitPolicy
from temporalio.api.workflowservice.v1 import PollWorkflowExecutionUpdateRequest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.service import RPCError, RPCStatusCode

from invites.models import RedeemInput, RedeemResult, RedeemUser
from tests.support.auth0 import ASSIGN_ROLES, account
from tests.support.stack import Stack

pytestmark = pytest.mark.devserver

ADMITTED = UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED


async def admitted(handle: WorkflowHandle[Any, Any], update_id: str) -> bool:
    """Whether the server holds the update `update_id` (admitted, not necessarily accepted)."""
    request = PollWorkflowExecutionUpdateRequest(
        namespace=handle._client.namespace,
        update_ref=UpdateRef(
            workflow_execution=WorkflowExecution(workflow_id=handle.id), update_id=update_id
        ),
        wait_policy=WaitPolicy(lifecycle_stage=ADMITTED),
    )
    try:
        response = await handle._client.workflow_service.poll_workflow_execution_update(request)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return response.stage >= ADMITTED


async def test_two_redeems_in_flight_at_once_accept_exactly_one_user(dev_stack: Stack):
    stack = dev_stack
    async with stack.worker(keep_open=True):
        handle = await stack.invite("race@example.com", email_policy="any")
        await stack.sent(handle)
    users = {email: account(stack.auth0, email) for email in ("ada@example.com", "bob@example.com")}
    link = stack.signer.verify(stack.links("race@example.com")[-1])
    events: list[str] = []  # "sent <email>" and "answered <email>", in the order they happened

    async def redeem(email: str) -> RedeemResult:
        req = RedeemInput(generation=link.generation, user=RedeemUser(**users[email]))
        events.append(f"sent {email}")
        try:
            update = await handle.start_update(
                "redeem",
                req,
                wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                id=f"redeem-{email}",
                result_type=RedeemResult,
            )
            return await update.result()
        finally:
            events.append(f"answered {email}")

    # No worker: the server admits both updates and holds them for the next workflow task.
    racing = {email: asyncio.create_task(redeem(email)) for email in users}
    async with asyncio.timeout(20):
        while not all([await admitted(handle, f"redeem-{email}") for email in users]):
            await asyncio.sleep(0.05)
    assert not any(task.done() for task in racing.values()), events
    async with stack.worker():
        outcomes = await asyncio.gather(*racing.values(), return_exceptions=True)
        final = await handle.result()

    # Both were in flight at once: each was sent before either was answered.
    assert sorted(events[:2]) == [f"sent {email}" for email in users], events

    by_email = dict(zip(racing, outcomes, strict=True))
    winners = [email for email, outcome in by_email.items() if isinstance(outcome, RedeemResult)]
    losers = [email for email, outcome in by_email.items() if isinstance(outcome, WorkflowUpdateFailedError)]
    assert (len(winners), len(losers)) == (1, 1), outcomes
    [winner], [loser] = winners, losers
    assert by_email[loser].cause.type == "already_redeemed"
    assert (final.accepted_by, final.grant) == (users[winner]["user_id"], "done")
    assert stack.auth0.faults.count(ASSIGN_ROLES) == 1
    assert stack.auth0.role_assignments[users[winner]["user_id"]] == 1
    assert stack.auth0.role_assignments[users[loser]["user_id"]] == 0
    assert await stack.store.links_for_user(users[loser]["user_id"]) == []
