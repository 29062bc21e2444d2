"""Grants that cannot succeed (time-skipping server).

A step that can never succeed leaves the invitation `accepted` with `grant: "failed"` and the
reason, for ops; every other step still runs to its end.
"""

from __future__ import annotations

from datetime import UTC, datetime

from invites.models import Status
from tests.support.auth0 import user_payload
from tests.support.stack import Stack

ASSIGN = "POST /api/v2/users/{id}/roles"


async def test_an_auth0_step_that_cannot_succeed_leaves_the_grant_failed_and_the_rest_done(stack: Stack):
    async with stack.worker():
        handle = await stack.invite("gone@example.com", roles=("customer",), app_metadata={"plan": "pro"})
        await stack.sent(handle)
        user = stack.auth0.create_user("gone@example.com")
        stack.auth0.faults.status(
            ASSIGN, 404, body={"statusCode": 404, "message": "The user does not exist."}
        )
        result = await stack.redeem(handle, user_payload(stack.auth0, "gone@example.com"))
        final = await handle.result()

    assert (result.result, result.grant) == ("accepted", "failed")
    assert (final.status, final.grant) == (Status.ACCEPTED, "failed")
    assert final.grant_error and "does not exist" in final.grant_error
    # The other steps ran to their end all the same.
    assert stack.auth0.user(user["user_id"])["app_metadata"]["invites"]["data"]["plan"] == "pro"
    assert [link.invitation_id for link in await stack.store.links_for_user(user["user_id"])] == [
        final.invitation_id
    ]
    assert stack.auth0.role_assignments[user["user_id"]] == 0


async def test_a_link_held_by_another_account_fails_the_grant_and_changes_nothing(stack: Stack):
    async with stack.worker():
        handle = await stack.invite("held@example.com", roles=("customer",))
        state = await stack.sent(handle)
        # Our table already names someone else (edited by hand): the link must not move.
        await stack.store.link_account(
            state.invitation_id, "auth0|someone-else", "x@example.com", datetime.now(UTC)
        )
        stack.auth0.create_user("held@example.com")
        result = await stack.redeem(handle, user_payload(stack.auth0, "held@example.com"))
        final = await handle.result()

    assert (result.grant, final.grant) == ("failed", "failed")
    assert final.grant_error and "already linked" in final.grant_error
    assert [link.invitation_id for link in await stack.store.links_for_user("auth0|someone-else")] == [
        state.invitation_id
    ]


async def test_a_part_that_may_still_pass_is_retried_before_a_final_failure_is_reported(stack: Stack):
    """The one grant call: the roles fail for good while the profile write fails for a
    while; the call is retried until the profile is written, then the grant fails with the
    final reason (the retry repeats the roles' read, never a write that had landed)."""
    patch = "PATCH /api/v2/users/{id}"
    async with stack.worker():
        handle = await stack.invite("mixed@example.com", roles=("customer",), app_metadata={"plan": "pro"})
        await stack.sent(handle)
        user = stack.auth0.create_user("mixed@example.com")
        gone = {"statusCode": 404, "message": "The user does not exist."}
        stack.auth0.faults.status(ASSIGN, 404, body=gone, times=1_000)
        stack.auth0.faults.status(patch, 503, times=2)
        await stack.redeem(handle, user_payload(stack.auth0, "mixed@example.com"))
        final = await handle.result()

    assert (final.status, final.grant) == (Status.ACCEPTED, "failed")
    assert final.grant_error and "does not exist" in final.grant_error
    assert stack.auth0.faults.count(patch, status=503) == 2
    assert stack.auth0.faults.count(patch) == 3  # written on the third attempt, once
    assert stack.auth0.faults.count(ASSIGN) == 3  # tried by every attempt, refused each time
    account = stack.auth0.user(user["user_id"])
    assert account["app_metadata"]["invites"]["data"]["plan"] == "pro"
    assert [i["id"] for i in account["app_metadata"]["invitations"]] == [final.invitation_id]
    assert [link.invitation_id for link in await stack.store.links_for_user(user["user_id"])] == [
        final.invitation_id
    ]


async def test_a_retry_whose_link_is_refused_for_good_still_finishes_the_auth0_parts(stack: Stack):
    """A retry links first; a final refusal there (a link held by another account) does not stop
    it: the profile write that failed for now is done before the grant fails."""
    patch = "PATCH /api/v2/users/{id}"
    async with stack.worker():
        handle = await stack.invite("both@example.com", roles=("customer",), app_metadata={"plan": "pro"})
        state = await stack.sent(handle)
        await stack.store.link_account(
            state.invitation_id, "auth0|someone-else", "x@example.com", datetime.now(UTC)
        )
        user = stack.auth0.create_user("both@example.com")
        stack.auth0.faults.status(patch, 503, times=1)
        await stack.redeem(handle, user_payload(stack.auth0, "both@example.com"))
        final = await handle.result()

    assert (final.status, final.grant) == (Status.ACCEPTED, "failed")
    assert final.grant_error and "already linked" in final.grant_error
    assert stack.auth0.faults.count(patch) == 2  # refused once, written by the retry
    assert stack.auth0.user(user["user_id"])["app_metadata"]["invites"]["data"]["plan"] == "pro"
    assert stack.auth0.role_names(user["user_id"]) == ["customer"]
    assert stack.auth0.faults.count(ASSIGN) == 1  # the retry found the role held
