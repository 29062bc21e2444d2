"""Redeems by two people that reach the workflow in the same workflow task (real dev server).

Both validators run before either handler, so both see `pending`: the first handler accepts,
the second is told `already_redeemed`, and only the first person is linked and granted. The
time-skipping server does not hold updates for a stopped worker the same way, so this runs on
the dev server.
"""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateStage

from invites.models import WORKFLOW_VERSION, RedeemInput, RedeemUser
from tests.workflows.conftest import Stack, user_payload

pytestmark = pytest.mark.devserver


@pytest.mark.parametrize("version", [1, 2, WORKFLOW_VERSION])
async def test_two_redeems_in_one_workflow_task_accept_only_the_first(dev_stack: Stack, version: int):
    stack = dev_stack
    async with stack.worker(keep_open=True):
        handle = await stack.invite("race@example.com", email_policy="any", version=version)
        await stack.sent(handle)
    ada = stack.auth0.create_user("ada@example.com")
    bob = stack.auth0.create_user("bob@example.com")
    link = stack.signer.verify(stack.links("race@example.com")[-1])

    async def redeem(email: str):
        req = RedeemInput(generation=link.generation, user=RedeemUser(**user_payload(stack.auth0, email)))
        update = await handle.start_update(
            "redeem", req, wait_for_stage=WorkflowUpdateStage.ACCEPTED, id=f"redeem-{email}"
        )
        return await update.result()

    # No worker: both updates wait for the same workflow task.
    racing = [asyncio.create_task(redeem(email)) for email in ("ada@example.com", "bob@example.com")]
    await asyncio.sleep(1)
    async with stack.worker():
        outcomes = await asyncio.gather(*racing, return_exceptions=True)
        final = await handle.result()

    accepted = [o for o in outcomes if not isinstance(o, BaseException)]
    rejected = [o for o in outcomes if isinstance(o, WorkflowUpdateFailedError)]
    assert (len(accepted), len(rejected)) == (1, 1), outcomes
    assert rejected[0].cause.type == "already_redeemed"
    winner = final.accepted_by
    assert winner in (ada["user_id"], bob["user_id"])
    assert final.grant == "done"
    loser = bob["user_id"] if winner == ada["user_id"] else ada["user_id"]
    assert stack.auth0.role_assignments[winner] == 1
    assert stack.auth0.role_assignments[loser] == 0
    assert await stack.store.links_for_user(loser) == []
