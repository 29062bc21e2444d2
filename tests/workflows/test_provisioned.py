"""The provisioned mode (SPEC §10) on the time-skipping server: the account created ahead, its
password-change ticket in our mail, fresh tickets in reminders, the token-less redeem, the
removal of an unused account, and the fall-back to the link."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowHandle

from invites import invitations
from invites.invitations import InvitationRejected
from invites.models import InvitationState, RedeemInput, RedeemUser, Status
from tests.support.auth0 import user_payload
from tests.support.stack import DAY, LINK, Stack

TICKET = re.compile(r"(http://127\.0\.0\.1:\d+/u/reset-password\?ticket=[A-Za-z0-9_-]+)#")
CREATE_USER = "POST /api/v2/users"
TICKETS = "POST /api/v2/tickets/password-change"


def tickets(stack: Stack, email: str) -> list[str]:
    """The ticket URLs in the mails SendGrid received for `email`, oldest first."""
    return [TICKET.findall(mail.text)[0] for mail in stack.sendgrid.messages_to(email)]


def the_account(stack: Stack, email: str) -> dict[str, Any] | None:
    users = stack.auth0.tenant.users_by_email(email)
    return users[0] if users else None


async def provisioned(
    stack: Stack, email: str, **kwargs: Any
) -> tuple[WorkflowHandle[Any, InvitationState], str]:
    handle = await stack.invite(email, mode="provisioned", **kwargs)
    state = await stack.sent(handle)
    assert state.mode == "provisioned" and state.provisioned_user_id
    return handle, state.provisioned_user_id


async def redeem_as(stack: Stack, invitation_id: str, user_id: str, email: str, **kwargs: Any) -> Any:
    """The webhook's token-less redeem for an account's first login (`invitation_id` body)."""
    user = RedeemUser(user_id=user_id, email=email, email_verified=True)
    req = RedeemInput(generation=0, user=user, via="provisioned", **kwargs)
    return await invitations.redeem(stack.client, invitation_id, req)


async def test_the_account_exists_invited_before_any_login_and_the_mail_carries_a_ticket(stack: Stack):
    async with stack.worker():
        handle, user_id = await provisioned(stack, "Pia@Example.com", reminders=())
        account = the_account(stack, "pia@example.com")
        assert account is not None and account["user_id"] == user_id
        assert account["identities"][0]["connection"] == "Username-Password-Authentication"
        assert account["app_metadata"] == {
            "invites": {"status": "invited", "invitation_id": handle.id.removeprefix("invitation-")}
        }
        assert (account["logins_count"], account["email_verified"]) == (0, False)
        # Our mail, not Auth0's: a ticket link, no /i/ token.
        [mail] = stack.sendgrid.messages_to("Pia@Example.com")
        assert len(tickets(stack, "Pia@Example.com")) == 1
        assert not LINK.findall(mail.text) and "/i/" not in mail.text
        assert "set your password" in mail.text
        # The ticket never enters history (nor the account's random password).
        history = (await handle.fetch_history()).to_json()
        ticket_id = tickets(stack, "Pia@Example.com")[0].rsplit("=", 1)[1]
        assert ticket_id not in history and "password" not in history.lower()


async def test_a_retried_first_step_finds_the_account_it_created(stack: Stack):
    stack.auth0.faults.status(TICKETS, 503, times=2)  # the account is made, then the ticket fails
    async with stack.worker():
        _, user_id = await provisioned(stack, "retry@example.com", reminders=())
        assert stack.auth0.faults.count(CREATE_USER, status=201) == 1
        assert [u["user_id"] for u in stack.auth0.tenant.users_by_email("retry@example.com")] == [user_id]
        assert len(tickets(stack, "retry@example.com")) == 1


async def test_a_reminder_carries_a_fresh_ticket_and_the_old_one_is_refused(stack: Stack):
    async with stack.worker():
        handle, user_id = await provisioned(stack, "rem@example.com", reminders=(3 * DAY,))
        await stack.env.sleep(3 * DAY + timedelta(minutes=1))
        await stack.until(handle, lambda s: s.reminders_sent == 1)
        first, second = tickets(stack, "rem@example.com")
        assert first != second
        async with httpx.AsyncClient() as http:
            old, new = await http.get(first), await http.get(second)
        assert old.status_code == 404 and "Invalid Link" in old.text
        assert new.status_code == 200 and "Change Your Password" in new.text
        assert stack.auth0.tickets.issued_for(user_id) and len(stack.auth0.tickets.issued_for(user_id)) == 2


@pytest.mark.record_history
async def test_the_first_login_redeems_without_a_token_and_the_account_turns_active(stack: Stack):
    async with stack.worker():
        handle, user_id = await provisioned(
            stack, "act@example.com", roles=("customer",), app_metadata={"plan": "pro"}
        )
        invitation_id = handle.id.removeprefix("invitation-")
        result = await redeem_as(stack, invitation_id, user_id, "act@example.com")
        assert (result.invitation_id, result.roles) == (invitation_id, ["customer"])
        final = await handle.result()
        assert (final.status, final.accepted_by, final.grant) == (Status.ACCEPTED, user_id, "done")
        account = stack.auth0.user(user_id)  # kept: it accepted
        assert account["app_metadata"]["invites"] == {
            "status": "active",
            "invitation_id": invitation_id,
            "data": {"plan": "pro"},
        }
        assert stack.auth0.role_names(user_id) == ["customer"]


async def test_a_token_less_redeem_by_another_account_or_of_a_link_invitation_is_refused(stack: Stack):
    async with stack.worker():
        handle, _ = await provisioned(stack, "own@example.com")
        intruder = stack.auth0.create_user("intruder@example.com")["user_id"]
        with pytest.raises(InvitationRejected) as rejected:
            await redeem_as(stack, handle.id.removeprefix("invitation-"), intruder, "own@example.com")
        assert rejected.value.reason == "not_provisioned"

        link = await stack.invite("plain@example.com")
        await stack.sent(link)
        stack.auth0.create_user("plain@example.com")
        plain = user_payload(stack.auth0, "plain@example.com")
        with pytest.raises(InvitationRejected) as rejected:
            await redeem_as(stack, link.id.removeprefix("invitation-"), plain["user_id"], "plain@example.com")
        assert rejected.value.reason == "not_provisioned"
        assert (await stack.state(handle)).status == Status.PENDING
        assert (await stack.state(link)).status == Status.PENDING
        assert stack.auth0.role_assignments == {}


@pytest.mark.record_history
async def test_expiry_removes_a_never_used_account(stack: Stack):
    async with stack.worker():
        handle, user_id = await provisioned(stack, "gone@example.com", expires_in=2 * DAY, reminders=())
        final = await handle.result()
        assert final.status == Status.EXPIRED
        assert user_id not in stack.auth0.tenant.users
        assert the_account(stack, "gone@example.com") is None


async def test_expiry_keeps_an_account_that_logged_in(stack: Stack):
    async with stack.worker():
        handle, user_id = await provisioned(stack, "kept@example.com", expires_in=2 * DAY, reminders=())
        stack.auth0.tenant.record_login(user_id)  # signed in, the redeem never reached us
        final = await handle.result()
        assert final.status == Status.EXPIRED
        assert stack.auth0.user(user_id)["logins_count"] == 1


async def test_revoke_removes_a_never_used_account(stack: Stack):
    async with stack.worker():
        handle, user_id = await provisioned(stack, "rvk@example.com")
        await invitations.revoke(stack.client, handle.id.removeprefix("invitation-"), "wrong person")
        assert (await handle.result()).status == Status.REVOKED
        assert user_id not in stack.auth0.tenant.users


async def test_an_address_with_an_account_falls_back_to_the_link(stack: Stack):
    existing = stack.auth0.create_user("had@example.com", password="a long password")
    async with stack.worker():
        handle = await stack.invite("had@example.com", mode="provisioned", expires_in=2 * DAY, reminders=())
        state = await stack.sent(handle)
        assert (state.mode, state.provisioned_user_id, state.screen_hint) == ("link", None, "login")
        assert len(stack.links("had@example.com")) == 1  # our /i/ link
        assert not TICKET.findall(stack.sendgrid.messages_to("had@example.com")[0].text)
        assert stack.auth0.faults.count(CREATE_USER) == 0
        assert (await handle.result()).status == Status.EXPIRED
        assert existing["user_id"] in stack.auth0.tenant.users  # never ours to remove


async def test_a_claim_by_another_account_accepts_and_removes_the_unused_account(stack: Stack):
    async with stack.worker():
        handle, made = await provisioned(stack, "two@example.com", roles=("customer",))
        google = stack.auth0.create_user("two@example.com", connection="google-oauth2")["user_id"]
        user = RedeemUser(user_id=google, email="two@example.com", email_verified=True)
        req = RedeemInput(generation=0, user=user, via="claim")
        await invitations.redeem(stack.client, handle.id.removeprefix("invitation-"), req)
        final = await handle.result()
        assert (final.status, final.accepted_by) == (Status.ACCEPTED, google)
        assert made not in stack.auth0.tenant.users  # never used: removed
        assert stack.auth0.role_names(google) == ["customer"]
        assert "claimed_at" in stack.auth0.user(google)["app_metadata"]["invites"]


async def test_a_mail_refused_for_good_ends_undeliverable_and_removes_the_account(stack: Stack):
    stack.sendgrid.reject("bounce@example.com")
    async with stack.worker():
        handle = await stack.invite("bounce@example.com", mode="provisioned")
        final = await handle.result()
        assert final.status == Status.UNDELIVERABLE
        assert the_account(stack, "bounce@example.com") is None
