"""Rolling back a wrong acceptance: exactly what the grant wrote goes, nothing else (time-skipping).

`invites.rollback.roll_back` starts a second run under the invitation's id; these tests drive it
as the API and the CLI do and read the sandbox tenant, our database and the CRM afterwards.
"""

from __future__ import annotations

import pytest

from invites.invitations import InvitationNotFound, InvitationRejected, get_state
from invites.models import Status
from invites.rollback import roll_back
from invites.temporal import STATUS
from tests.support.auth0 import user_payload
from tests.support.stack import DAY, Stack

REMOVE = "DELETE /api/v2/users/{id}/roles"


async def accepted(stack: Stack, email: str, **invite: object) -> tuple[str, str]:
    """An invitation to `email` accepted by the account with that address: (invitation, user)."""
    handle = await stack.invite(email, **invite)
    await stack.sent(handle)
    if not stack.auth0.tenant.users_by_email(email):
        stack.auth0.create_user(email)  # signs up from the link
    result = await stack.redeem(handle, user_payload(stack.auth0, email))
    assert (result.result, result.grant) == ("accepted", "done")
    final = await handle.result()
    assert final.status == Status.ACCEPTED
    return final.invitation_id, final.accepted_by or ""


@pytest.mark.record_history
async def test_rollback_removes_what_the_grant_wrote_and_keeps_what_was_there(stack: Stack):
    uid = stack.auth0.create_user("rollo@example.com")["user_id"]
    stack.auth0.tenant.assign_roles(uid, [stack.auth0.role_id("member")])  # held before
    stack.auth0.user(uid)["app_metadata"] = {"theme": "dark"}  # someone else's key
    async with stack.worker():
        invitation_id, accepted_by = await accepted(
            stack, "rollo@example.com", roles=("customer", "member"), app_metadata={"plan": "pro"}
        )
        assert accepted_by == uid
        assert stack.auth0.role_names(uid) == ["customer", "member"]
        assert (await get_state(stack.client, invitation_id)).roles_assigned == ["customer"]

        state = await roll_back(stack.client, stack.settings.task_queue, invitation_id, "wrong person")
        stack.handles.append(stack.client.get_workflow_handle(f"invitation-{invitation_id}"))  # recorded too

        assert (state.status, state.revoked_reason) == (Status.REVOKED, "wrong person")
        assert state.rollback == "done"
        assert state.rolled_back_at is not None
        assert state.accepted_by == uid  # the acceptance it undid stays visible
        assert stack.auth0.role_names(uid) == ["member"]
        metadata = stack.auth0.user(uid)["app_metadata"]
        assert metadata["theme"] == "dark"
        assert metadata["invitations"] == []
        assert "plan" not in metadata["invites"]["data"]
        assert await stack.store.links_for_user(uid) == []
        assert (await get_state(stack.client, invitation_id)).status == Status.REVOKED
        handle = stack.client.get_workflow_handle(f"invitation-{invitation_id}")
        assert (await handle.describe()).typed_search_attributes.get(STATUS) == "revoked"
        contact = stack.hubspot.contact_by_email("rollo@example.com")
        assert contact is not None
        assert contact["properties"]["invitation_status"] == "revoked"


async def test_a_second_rollback_answers_the_first_and_writes_nothing(stack: Stack):
    async with stack.worker():
        invitation_id, uid = await accepted(stack, "twice@example.com", roles=("customer",))
        first = await roll_back(stack.client, stack.settings.task_queue, invitation_id, "mistake")
        again = await roll_back(stack.client, stack.settings.task_queue, invitation_id, "other words")
        assert again == first
        assert again.revoked_reason == "mistake"
        removals = [c for c in stack.auth0.faults.calls(REMOVE) if uid in c.path]
        assert len(removals) == 1


async def test_rollback_keeps_roles_and_data_another_accepted_invitation_gives(stack: Stack):
    async with stack.worker():
        stack.auth0.create_user("both@example.com")
        first, uid = await accepted(
            stack, "both@example.com", roles=("customer",), app_metadata={"plan": "pro"}
        )
        second, _ = await accepted(
            stack, "both@example.com", roles=("customer", "member"), app_metadata={"plan": "pro", "seat": 2}
        )
        # The second grant found `customer` held already: only `member` is its own.
        assert (await get_state(stack.client, second)).roles_assigned == ["member"]

        await roll_back(stack.client, stack.settings.task_queue, second, "duplicate")

        assert stack.auth0.role_names(uid) == ["customer"]
        metadata = stack.auth0.user(uid)["app_metadata"]
        assert [i["id"] for i in metadata["invitations"]] == [first]
        assert metadata["invites"]["data"] == {"plan": "pro"}  # `seat` was only the second's
        assert [link.invitation_id for link in await stack.store.links_for_user(uid)] == [first]

        await roll_back(stack.client, stack.settings.task_queue, first, "both wrong")
        assert stack.auth0.role_names(uid) == []
        assert stack.auth0.user(uid)["app_metadata"]["invites"]["data"] == {}


async def test_a_rolled_back_invitation_cannot_be_redeemed_again(stack: Stack):
    async with stack.worker():
        invitation_id, uid = await accepted(stack, "again@example.com", roles=("customer",))
        await roll_back(stack.client, stack.settings.task_queue, invitation_id, "wrong account")
        handle = stack.client.get_workflow_handle(f"invitation-{invitation_id}")
        with pytest.raises(InvitationRejected) as refused:
            await stack.redeem(handle, user_payload(stack.auth0, "again@example.com"))
        assert refused.value.reason == "revoked"
        assert stack.auth0.role_names(uid) == []


async def test_only_an_accepted_invitation_can_be_rolled_back(stack: Stack):
    async with stack.worker():
        pending = await stack.invite("wait@example.com")
        await stack.sent(pending)
        pending_id = pending.id.removeprefix("invitation-")
        with pytest.raises(InvitationRejected) as refused:
            await roll_back(stack.client, stack.settings.task_queue, pending_id, "no")
        assert refused.value.reason == "not_accepted"
        assert (await stack.state(pending)).status == Status.PENDING

        lapsing = await stack.invite("late@example.com", expires_in=DAY)
        await stack.sent(lapsing)
        await stack.env.sleep(2 * DAY)
        assert (await lapsing.result()).status == Status.EXPIRED
        lapsed_id = lapsing.id.removeprefix("invitation-")
        with pytest.raises(InvitationRejected) as refused:
            await roll_back(stack.client, stack.settings.task_queue, lapsed_id, "no")
        assert refused.value.reason == "expired"

        with pytest.raises(InvitationNotFound):
            await roll_back(stack.client, stack.settings.task_queue, "inv_00000000000000000000000000", "no")
