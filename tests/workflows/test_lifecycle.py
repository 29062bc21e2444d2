"""Reminders, expiry, extend, revoke, resend and the email policy (time-skipping server)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle

from invites import invitations
from invites.invitations import InvitationRejected
from invites.models import InvitationState, Status
from invites.temporal import EXPIRES_AT, STATUS
from tests.support.auth0 import user_payload
from tests.support.stack import DAY, Stack


def kinds(stack: Stack, email: str) -> list[str]:
    return [m.custom_args["mail_kind"] for m in stack.sendgrid.messages_to(email)]


@pytest.mark.record_history
async def test_reminders_go_out_at_their_offsets_then_the_invitation_expires(stack: Stack):
    async with stack.worker():
        handle = await stack.invite("rem@example.com", reminders=(3 * DAY, 7 * DAY), expires_in=14 * DAY)
        await stack.sent(handle)
        await stack.env.sleep(3 * DAY + timedelta(minutes=1))
        assert (await stack.until(handle, lambda s: s.reminders_sent == 1)).status == Status.PENDING
        await stack.env.sleep(4 * DAY)
        await stack.until(handle, lambda s: s.reminders_sent == 2)
        await stack.env.sleep(6 * DAY + timedelta(hours=23))
        assert (await stack.state(handle)).status == Status.PENDING  # one hour before expiry
        final = await handle.result()
        assert final.status == Status.EXPIRED
        assert final.reminders_sent == 2
        assert kinds(stack, "rem@example.com") == ["invite", "reminder", "reminder"]
        assert all(m.custom_args["invitation_id"] == final.invitation_id for m in stack.sendgrid.messages)
        assert (await handle.describe()).typed_search_attributes.get(STATUS) == "expired"


async def test_no_reminder_after_acceptance(stack: Stack):
    async with stack.worker():
        handle = await stack.invite("acc@example.com", reminders=(3 * DAY, 7 * DAY))
        await stack.sent(handle)
        await stack.env.sleep(3 * DAY + timedelta(hours=1))
        await stack.until(handle, lambda s: s.reminders_sent == 1)
        stack.auth0.create_user("acc@example.com")
        await stack.redeem(handle, user_payload(stack.auth0, "acc@example.com"))
        final = await handle.result()
        await stack.env.sleep(10 * DAY)
        assert final.reminders_sent == 1
        assert kinds(stack, "acc@example.com") == ["invite", "reminder"]


@pytest.mark.record_history
async def test_no_reminder_after_revocation_and_redeem_after_is_revoked(stack: Stack):
    async with stack.worker():
        handle = await stack.invite("rev@example.com", reminders=(3 * DAY,))
        state = await stack.sent(handle)
        await invitations.revoke(stack.env.client, state.invitation_id, "sent by mistake")
        final = await handle.result()
        assert (final.status, final.revoked_reason) == (Status.REVOKED, "sent by mistake")
        await stack.env.sleep(5 * DAY)
        assert kinds(stack, "rev@example.com") == ["invite"]
        stack.auth0.create_user("rev@example.com")
        with pytest.raises(InvitationRejected) as rejected:
            await stack.redeem(handle, user_payload(stack.auth0, "rev@example.com"))
        assert rejected.value.reason == "revoked"
        assert stack.auth0.role_assignments == {}


@pytest.mark.record_history
async def test_extend_moves_the_expiry_and_redeem_after_expiry_is_expired(stack: Stack):
    async with stack.worker():
        handle = await stack.invite("ext@example.com", expires_in=2 * DAY, reminders=())
        state = await stack.sent(handle)
        new_expiry = state.expires_at + 3 * DAY
        extended = await invitations.extend(stack.env.client, state.invitation_id, new_expiry)
        assert extended.expires_at == new_expiry
        assert (await handle.describe()).typed_search_attributes.get(EXPIRES_AT) == new_expiry
        await stack.env.sleep(4 * DAY)
        assert (await stack.state(handle)).status == Status.PENDING  # the old expiry has passed
        final = await handle.result()
        assert final.status == Status.EXPIRED
        assert final.ended_at >= new_expiry
        stack.auth0.create_user("ext@example.com")
        with pytest.raises(InvitationRejected) as rejected:
            await stack.redeem(handle, user_payload(stack.auth0, "ext@example.com"))
        assert rejected.value.reason == "expired"


async def test_extend_is_refused_beyond_90_days_and_after_the_end(stack: Stack):
    async with stack.worker():
        handle = await stack.invite("far@example.com", expires_in=1 * DAY, reminders=())
        state = await stack.sent(handle)
        now = await stack.now()
        with pytest.raises(InvitationRejected) as too_far:
            await invitations.extend(stack.env.client, state.invitation_id, now + 91 * DAY)
        assert too_far.value.reason == "invalid_expiry"
        with pytest.raises(InvitationRejected) as past:
            await invitations.extend(stack.env.client, state.invitation_id, now - DAY)
        assert past.value.reason == "invalid_expiry"
        assert (await stack.state(handle)).expires_at == state.expires_at
        await handle.result()
        with pytest.raises(InvitationRejected) as ended:
            await invitations.extend(stack.env.client, state.invitation_id, now + 10 * DAY)
        assert ended.value.reason == "expired"


async def _resent(
    stack: Stack, email: str, *, rotate: bool
) -> tuple[WorkflowHandle[Any, InvitationState], str, str]:
    """An invitation sent, then resent: its handle and the two mails' links."""
    handle = await stack.invite(email)
    state = await stack.sent(handle)
    await invitations.resend(stack.env.client, state.invitation_id, rotate=rotate)
    await stack.sent(handle, mails=2)
    first, second = stack.links(email)
    return handle, first, second


async def test_resend_without_rotation_keeps_the_old_link_valid(stack: Stack):
    async with stack.worker():
        handle, first, second = await _resent(stack, "keep@example.com", rotate=False)
        assert first == second  # same generation, same link
        stack.auth0.create_user("keep@example.com")
        result = await stack.redeem(handle, user_payload(stack.auth0, "keep@example.com"), token=first)
        assert result.result == "accepted"


@pytest.mark.record_history
async def test_resend_with_rotation_makes_the_old_link_stale_and_the_new_one_works(stack: Stack):
    async with stack.worker():
        handle, old, new = await _resent(stack, "rot@example.com", rotate=True)
        assert old != new
        stack.auth0.create_user("rot@example.com")
        user = user_payload(stack.auth0, "rot@example.com")
        with pytest.raises(InvitationRejected) as stale:
            await stack.redeem(handle, user, token=old)
        assert stale.value.reason == "stale_link"
        assert (await stack.state(handle)).status == Status.PENDING
        result = await stack.redeem(handle, user, token=new)
        assert (result.result, result.grant) == ("accepted", "done")
        final = await handle.result()
        assert (final.generation, final.mails_sent) == (1, 2)


@pytest.mark.record_history
async def test_email_mismatch_changes_nothing_and_the_right_user_accepts_after(stack: Stack):
    async with stack.worker():
        handle = await stack.invite("right@example.com", roles=("member",))
        await stack.sent(handle)
        stack.auth0.create_user("other@example.com")
        stack.auth0.create_user("RIGHT@example.com")
        with pytest.raises(InvitationRejected) as mismatch:
            await stack.redeem(handle, user_payload(stack.auth0, "other@example.com"))
        assert mismatch.value.reason == "email_mismatch"
        state = await stack.state(handle)
        assert (state.status, state.accepted_by) == (Status.PENDING, None)
        result = await stack.redeem(handle, user_payload(stack.auth0, "right@example.com"))
        assert result.result == "accepted"
        final = await handle.result()
        other = user_payload(stack.auth0, "other@example.com")["user_id"]
        assert stack.auth0.role_names(other) == []
        assert final.accepted_by == user_payload(stack.auth0, "right@example.com")["user_id"]


async def test_email_policy_verified_refuses_an_unverified_sign_up_and_accepts_a_verified_social_login(
    stack: Stack,
):
    async with stack.worker():
        handle = await stack.invite("vera@example.com", roles=("member",), email_policy="verified")
        await stack.sent(handle)
        password = stack.auth0.create_user("vera@example.com", email_verified=False)
        google = stack.auth0.create_user("vera@example.com", connection="google-oauth2", email_verified=True)
        unverified = {"user_id": password["user_id"], "email": "vera@example.com", "email_verified": False}
        with pytest.raises(InvitationRejected) as refused:
            await stack.redeem(handle, unverified)
        assert refused.value.reason == "email_mismatch"
        assert (await stack.state(handle)).status == Status.PENDING
        verified = {"user_id": google["user_id"], "email": "vera@example.com", "email_verified": True}
        result = await stack.redeem(handle, verified)
        assert (result.result, result.grant) == ("accepted", "done")
        final = await handle.result()
    assert final.accepted_by == google["user_id"]
    assert stack.auth0.role_names(password["user_id"]) == []
    assert stack.auth0.role_names(google["user_id"]) == ["member"]


async def test_email_policy_any_accepts_whoever_logs_in_with_the_link(stack: Stack):
    async with stack.worker():
        handle = await stack.invite("shared@example.com", email_policy="any")
        await stack.sent(handle)
        stack.auth0.create_user("someone-else@example.com")
        payload = user_payload(stack.auth0, "someone-else@example.com")
        result = await stack.redeem(handle, payload)
        assert result.result == "accepted"
        final = await handle.result()
        assert final.accepted_by == payload["user_id"]
        # the account's address differs from the invited one: not marked verified by us
        assert stack.auth0.user(payload["user_id"])["email_verified"] is False


async def test_redeem_retried_after_the_workflow_closed_gets_the_same_answer(stack: Stack):
    async with stack.worker():
        handle = await stack.invite("late@example.com")
        await stack.sent(handle)
        stack.auth0.create_user("late@example.com")
        payload = user_payload(stack.auth0, "late@example.com")
        first = await stack.redeem(handle, payload)
        await handle.result()  # closed now: the update cannot reach it
        again = await stack.redeem(handle, payload)
        assert again == first.model_copy(update={"grant": "done"})
        stack.auth0.create_user("intruder@example.com")
        with pytest.raises(InvitationRejected) as taken:
            await stack.redeem(handle, user_payload(stack.auth0, "intruder@example.com"))
        assert taken.value.reason == "already_redeemed"
