"""The Auth0 calls of the grant, driven directly against the fake tenant over HTTP (inside an
activity context, as the grant runs them).

- `assign_roles` reads the roles held page by page (until a page comes back short) and assigns
  only the missing ones, so a retry assigns nothing twice.
- `update_profile` checks the account's address again before marking it verified: the account
  may have changed between the login and the grant, a window too short to hit through the
  workflow.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
from temporalio.testing import ActivityEnvironment

from activities.auth0 import ROLES_PAGE, Auth0Users
from invites.auth0 import Auth0Management
from tests.support.stack import Stack

LIST = "GET /api/v2/users/{id}/roles"
ASSIGN = "POST /api/v2/users/{id}/roles"
PATCH = "PATCH /api/v2/users/{id}"
ACCEPTED_AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def _run(stack: Stack, call: str, *args: Any) -> Any:
    async with httpx.AsyncClient(timeout=stack.settings.auth0_timeout) as http:
        users = Auth0Users(Auth0Management(stack.settings, http))
        return await ActivityEnvironment().run(getattr(users, call), *args)


async def _assign(stack: Stack, user_id: str, roles: list[str]) -> tuple[list[str], list[str]]:
    return await _run(stack, "assign_roles", user_id, roles)


async def _update_profile(
    stack: Stack,
    user_id: str,
    invitation_id: str,
    app_metadata: dict[str, Any] | None = None,
    verify_email: str | None = None,
) -> bool:
    return await _run(
        stack, "update_profile", user_id, invitation_id, ACCEPTED_AT, app_metadata or {}, verify_email
    )


def _pages_read(stack: Stack, user_id: str) -> list[str]:
    return [c.query["page"] for c in stack.auth0.faults.calls(LIST) if user_id in c.path]


async def test_a_user_with_few_roles_costs_one_read_and_one_write(stack: Stack):
    user_id = stack.auth0.create_user("few@example.com")["user_id"]
    stack.auth0.tenant.assign_roles(user_id, [stack.auth0.role_id("customer")])

    result = await _assign(stack, user_id, ["member"])

    assert result == (["member"], [])
    # One page was short, so no second read (the SDK's own pager would have asked for page 1).
    assert _pages_read(stack, user_id) == ["0"]
    assert [r["name"] for r in stack.auth0.tenant.roles_of(user_id)] == ["customer", "member"]
    # A retry reads again and assigns nothing.
    again = await _assign(stack, user_id, ["member"])
    assert again == ([], ["member"])
    assert sum(1 for c in stack.auth0.faults.calls(ASSIGN) if user_id in c.path) == 1
    assert stack.auth0.tenant.role_assignments[user_id] == 2  # customer by hand, member once


async def test_roles_held_beyond_the_first_page_are_read_and_not_assigned_again(stack: Stack):
    user_id = stack.auth0.create_user("many@example.com")["user_id"]
    extra = [stack.auth0.tenant.add_role(f"team-{n:03d}")["id"] for n in range(ROLES_PAGE)]
    # A full first page of other roles, and "member" on the second.
    stack.auth0.tenant.assign_roles(user_id, [*extra, stack.auth0.role_id("member")])

    result = await _assign(stack, user_id, ["member", "customer"])

    assert result == (["customer"], ["member"])
    assert _pages_read(stack, user_id) == ["0", "1"]
    assert len(stack.auth0.tenant.roles_of(user_id)) == ROLES_PAGE + 2


async def test_an_address_changed_since_the_login_is_not_marked_verified(stack: Stack):
    user = stack.auth0.create_user("new-address@example.com", email_verified=False)
    # The Action reported the invited address; the account has moved on since.
    verified = await _update_profile(
        stack, user["user_id"], "inv_changed", {"plan": "pro"}, "invited@example.com"
    )
    assert verified is False
    account = stack.auth0.user(user["user_id"])
    assert account["email_verified"] is False
    # The rest of the profile write still lands.
    assert account["app_metadata"]["invites"]["data"]["plan"] == "pro"
    assert [i["id"] for i in account["app_metadata"]["invitations"]] == ["inv_changed"]


async def test_the_invited_address_is_marked_verified_once(stack: Stack):
    user = stack.auth0.create_user("Invited@Example.com", email_verified=False)
    # The same address, another case.
    assert (
        await _update_profile(stack, user["user_id"], "inv_same", verify_email="invited@example.com") is True
    )
    assert stack.auth0.user(user["user_id"])["email_verified"] is True
    # A retry finds it verified, says so, keeps one entry for the invitation, and writes nothing.
    assert (
        await _update_profile(stack, user["user_id"], "inv_same", verify_email="invited@example.com") is True
    )
    invitations = stack.auth0.user(user["user_id"])["app_metadata"]["invitations"]
    assert [i["id"] for i in invitations] == ["inv_same"]
    assert stack.auth0.faults.count(PATCH) == 1


async def test_a_changed_value_is_written_again_on_a_retry(stack: Stack):
    """The read decides: a key of ours that someone changed since is set back by the retry."""
    user = stack.auth0.create_user("again@example.com")
    await _update_profile(stack, user["user_id"], "inv_again", {"plan": "pro"})
    stack.auth0.user(user["user_id"])["app_metadata"]["invites"]["data"]["plan"] = "free"
    await _update_profile(stack, user["user_id"], "inv_again", {"plan": "pro"})
    assert stack.auth0.user(user["user_id"])["app_metadata"]["invites"]["data"]["plan"] == "pro"
    assert stack.auth0.faults.count(PATCH) == 2


async def test_the_payload_goes_under_invites_data_and_leaves_other_keys_alone(stack: Stack):
    """A payload key named like someone else's top-level key (`plan`) or like ours
    (`invitations`) lands under `invites.data` only; `invites`' other keys stay."""
    user = stack.auth0.create_user("others@example.com")
    stack.auth0.user(user["user_id"])["app_metadata"] = {
        "plan": "enterprise",
        "invites": {"status": "invited", "invitation_id": "inv_seed"},
    }
    payload = {"plan": "free", "invitations": "forged", "roles": ["admin"]}
    await _update_profile(stack, user["user_id"], "inv_others", payload)

    metadata = stack.auth0.user(user["user_id"])["app_metadata"]
    assert metadata["plan"] == "enterprise"
    assert "roles" not in metadata
    assert [i["id"] for i in metadata["invitations"]] == ["inv_others"]
    assert metadata["invites"] == {"status": "invited", "invitation_id": "inv_seed", "data": payload}
    # A retry reads it all written and sends nothing.
    await _update_profile(stack, user["user_id"], "inv_others", payload)
    assert stack.auth0.faults.count(PATCH) == 1


async def test_several_invitations_merge_their_payloads_the_later_winning(stack: Stack):
    user = stack.auth0.create_user("several@example.com")
    await _update_profile(stack, user["user_id"], "inv_first", {"plan": "pro", "quote": "Q-1"})
    await _update_profile(stack, user["user_id"], "inv_second", {"plan": "team", "seats": 5})

    metadata = stack.auth0.user(user["user_id"])["app_metadata"]
    assert metadata["invites"]["data"] == {"plan": "team", "quote": "Q-1", "seats": 5}
    assert [i["id"] for i in metadata["invitations"]] == ["inv_first", "inv_second"]


async def test_grants_for_one_account_at_once_in_a_worker_keep_every_entry(stack: Stack):
    # A claim grants every pending invitation of the address side by side; each grant is a
    # read-modify-write of the same keys, and Auth0 has no conditional write.
    user_id = stack.auth0.create_user("side-by-side@example.com")["user_id"]
    ids = [f"inv_side_{n}" for n in range(6)]
    async with httpx.AsyncClient(timeout=stack.settings.auth0_timeout) as http:
        users = Auth0Users(Auth0Management(stack.settings, http))  # one worker's
        env = ActivityEnvironment()
        await asyncio.gather(
            *(
                env.run(users.update_profile, user_id, i, ACCEPTED_AT, {f"k{n}": n}, None)
                for n, i in enumerate(ids)
            )
        )

    metadata = stack.auth0.user(user_id)["app_metadata"]
    assert sorted(i["id"] for i in metadata["invitations"]) == ids
    assert metadata["invites"]["data"] == {f"k{n}": n for n in range(len(ids))}
