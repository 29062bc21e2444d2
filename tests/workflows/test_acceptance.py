"""Accepting an invitation: the grant lands everywhere, exactly once (time-skipping server)."""

from __future__ import annotations

import pytest

from invites.invitations import InvitationRejected
from invites.models import Status
from invites.temporal import STATUS
from tests.support.auth0 import user_payload
from tests.support.stack import Stack
from workflows.invitation import InvitationWorkflow


@pytest.mark.record_history
async def test_new_user_accepts_and_is_granted_everywhere(stack: Stack):
    async with stack.worker():
        handle = await stack.invite(
            "Ada@Example.com", roles=("customer", "member"), app_metadata={"plan": "pro"}
        )
        state = await stack.sent(handle)
        assert state.screen_hint == "signup"

        user = stack.auth0.create_user("ada@example.com")  # signs up from the link
        result = await stack.redeem(handle, user_payload(stack.auth0, "ada@example.com"))
        assert result.result == "accepted"
        assert result.grant == "done"
        assert sorted(result.roles) == ["customer", "member"]

        final = await handle.result()
        uid = user["user_id"]
        assert final.status == Status.ACCEPTED
        assert final.accepted_by == uid
        assert stack.auth0.role_names(uid) == ["customer", "member"]
        account = stack.auth0.user(uid)
        assert account["email_verified"] is True
        assert account["app_metadata"]["invites"]["data"]["plan"] == "pro"
        assert [i["id"] for i in account["app_metadata"]["invitations"]] == [final.invitation_id]
        links = await stack.store.links_for_user(uid)
        assert [(link.invitation_id, link.data) for link in links] == [(final.invitation_id, {"plan": "pro"})]
        contact = stack.hubspot.contact_by_email("ada@example.com")
        assert contact is not None
        assert contact["properties"]["invitation_status"] == "accepted"
        assert contact["properties"]["auth0_user_id"] == uid
        description = await handle.describe()
        assert description.typed_search_attributes.get(STATUS) == "accepted"


async def test_one_grant_call_merges_metadata_verifies_the_address_and_links(stack: Stack):
    """The roles, the app_metadata merge with the verification (one read and one PATCH), and
    the account link are one activity."""
    async with stack.worker():
        handle = await stack.invite("una@example.com", app_metadata={"plan": "pro"})
        await stack.sent(handle)
        user = stack.auth0.create_user("una@example.com")
        # Someone else's keys, one named like a key of the payload.
        stack.auth0.user(user["user_id"])["app_metadata"] = {"theme": "dark", "plan": "enterprise"}
        result = await stack.redeem(handle, user_payload(stack.auth0, "una@example.com"))
        assert (result.result, result.grant) == ("accepted", "done")
        await handle.result()
    account = stack.auth0.user(user["user_id"])
    assert account["email_verified"] is True
    assert account["app_metadata"]["theme"] == "dark"  # not ours: kept
    assert account["app_metadata"]["plan"] == "enterprise"  # the payload never overwrites it
    assert account["app_metadata"]["invites"]["data"]["plan"] == "pro"
    assert set(stack.auth0.role_names(user["user_id"])) == {"customer"}
    events = (await handle.fetch_history()).events
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled.count("grant_access") == 1
    [link] = await stack.store.links_for_user(user["user_id"])
    assert link.invitation_id == result.invitation_id


async def test_an_enterprise_account_is_granted_without_touching_its_verification(stack: Stack):
    """Auth0 refuses `email_verified` for enterprise identities: the grant must not ask."""
    async with stack.worker():
        handle = await stack.invite("eve@acme.example", app_metadata={"plan": "team"})
        await stack.sent(handle)
        user = stack.auth0.create_user("eve@acme.example", connection="acme-saml", email_verified=False)
        payload = user_payload(stack.auth0, "eve@acme.example")
        assert payload["email_verified"] is False
        result = await stack.redeem(handle, payload)
        assert (result.result, result.grant) == ("accepted", "done")
        final = await handle.result()
    account = stack.auth0.user(user["user_id"])
    assert (final.grant, account["email_verified"]) == ("done", False)
    assert account["app_metadata"]["invites"]["data"]["plan"] == "team"
    assert [i["id"] for i in account["app_metadata"]["invitations"]] == [final.invitation_id]


@pytest.mark.record_history
async def test_existing_user_is_sent_to_login_and_accepts(stack: Stack):
    existing = stack.auth0.create_user("grace@example.com", email_verified=True)
    async with stack.worker():
        handle = await stack.invite("grace@example.com", roles=("admin",))
        state = await stack.sent(handle)
        assert state.screen_hint == "login"
        mail = stack.sendgrid.messages_to("grace@example.com")[0]
        assert "Sign in" in mail.text

        result = await stack.redeem(handle, user_payload(stack.auth0, "grace@example.com"))
        assert (result.result, result.grant) == ("accepted", "done")
        final = await handle.result()
        assert final.status == Status.ACCEPTED
        assert stack.auth0.role_names(existing["user_id"]) == ["admin"]
        assert stack.auth0.role_assignments[existing["user_id"]] == 1


@pytest.mark.record_history
async def test_second_redeem_by_same_user_returns_same_result_without_second_grant(stack: Stack):
    async with stack.worker():
        handle = await stack.invite("lin@example.com", roles=("customer", "member"))
        await stack.sent(handle)
        user = stack.auth0.create_user("lin@example.com")
        payload = user_payload(stack.auth0, "lin@example.com")
        first = await stack.redeem(handle, payload)
        second = await stack.redeem(handle, payload)
        assert first == second
        await handle.result()
        assigns = stack.auth0.faults.count("POST /api/v2/users/{id}/roles")
        assert assigns == 1
        assert stack.auth0.role_assignments[user["user_id"]] == 2  # two role ids, granted once


async def test_second_redeem_by_other_user_is_rejected(stack: Stack):
    async with stack.worker():
        handle = await stack.invite("mo@example.com", email_policy="any")
        await stack.sent(handle)
        stack.auth0.create_user("mo@example.com")
        stack.auth0.create_user("eve@example.com")
        await stack.redeem(handle, user_payload(stack.auth0, "mo@example.com"))
        with pytest.raises(InvitationRejected) as rejected:
            await stack.redeem(handle, user_payload(stack.auth0, "eve@example.com"))
        assert rejected.value.reason == "already_redeemed"
        final = await handle.result()
        assert final.accepted_by == user_payload(stack.auth0, "mo@example.com")["user_id"]
        state = await handle.query(InvitationWorkflow.state)
        assert state.status == Status.ACCEPTED
