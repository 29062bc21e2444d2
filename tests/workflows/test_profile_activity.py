"""`update_profile` itself, called as an activity against the fake tenant over HTTP.

The workflow asks for the email verification only when the Action reported the invited address;
the activity checks the account's address again before marking it, since the account may have
changed between the login and the grant. That window is too short to hit through the workflow,
so the activity is driven directly here.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from temporalio.testing import ActivityEnvironment

from activities.auth0 import Auth0Activities
from invites.auth0 import Auth0Management
from invites.models import UpdateProfileInput

from .conftest import Stack

ACCEPTED_AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PATCH = "PATCH /api/v2/users/{id}"


async def _update_profile(stack: Stack, inp: UpdateProfileInput) -> bool:
    async with httpx.AsyncClient(timeout=stack.settings.auth0_timeout) as http:
        activities = Auth0Activities(Auth0Management(stack.settings, http))
        return await ActivityEnvironment().run(activities.update_profile, inp)


async def test_an_address_changed_since_the_login_is_not_marked_verified(stack: Stack):
    user = stack.auth0.create_user("new-address@example.com", email_verified=False)
    inp = UpdateProfileInput(
        user_id=user["user_id"],
        invitation_id="inv_changed",
        accepted_at=ACCEPTED_AT,
        app_metadata={"plan": "pro"},
        verify_email="invited@example.com",  # what the Action reported; the account moved on
    )
    assert await _update_profile(stack, inp) is False
    account = stack.auth0.user(user["user_id"])
    assert account["email_verified"] is False
    # The rest of the profile write still lands.
    assert account["app_metadata"]["plan"] == "pro"
    assert [i["id"] for i in account["app_metadata"]["invitations"]] == ["inv_changed"]


async def test_the_invited_address_is_marked_verified_once(stack: Stack):
    user = stack.auth0.create_user("Invited@Example.com", email_verified=False)
    inp = UpdateProfileInput(
        user_id=user["user_id"],
        invitation_id="inv_same",
        accepted_at=ACCEPTED_AT,
        verify_email="invited@example.com",  # the same address, another case
    )
    assert await _update_profile(stack, inp) is True
    assert stack.auth0.user(user["user_id"])["email_verified"] is True
    # A retry finds it verified, says so, keeps one entry for the invitation, and writes nothing.
    assert await _update_profile(stack, inp) is True
    invitations = stack.auth0.user(user["user_id"])["app_metadata"]["invitations"]
    assert [i["id"] for i in invitations] == ["inv_same"]
    assert stack.auth0.faults.count(PATCH) == 1


async def test_a_changed_value_is_written_again_on_a_retry(stack: Stack):
    """The read decides: a key of ours that someone changed since is set back by the retry."""
    user = stack.auth0.create_user("again@example.com")
    inp = UpdateProfileInput(
        user_id=user["user_id"],
        invitation_id="inv_again",
        accepted_at=ACCEPTED_AT,
        app_metadata={"plan": "pro"},
    )
    await _update_profile(stack, inp)
    stack.auth0.user(user["user_id"])["app_metadata"]["plan"] = "free"
    await _update_profile(stack, inp)
    assert stack.auth0.user(user["user_id"])["app_metadata"]["plan"] == "pro"
    assert stack.auth0.faults.count(PATCH) == 2
