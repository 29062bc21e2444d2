"""`assign_roles` itself, called as an activity against the fake tenant over HTTP: the roles
held are read page by page (until a page comes back short), and only the missing ones are
assigned, so a retry assigns nothing twice."""

from __future__ import annotations

import httpx
from temporalio.testing import ActivityEnvironment

from activities.auth0 import ROLES_PAGE, Auth0Activities
from invites.auth0 import Auth0Management
from invites.models import AssignRolesInput, AssignRolesResult

from .conftest import Stack

LIST = "GET /api/v2/users/{id}/roles"
ASSIGN = "POST /api/v2/users/{id}/roles"


async def _assign(stack: Stack, inp: AssignRolesInput) -> AssignRolesResult:
    async with httpx.AsyncClient(timeout=stack.settings.auth0_timeout) as http:
        activities = Auth0Activities(Auth0Management(stack.settings, http))
        return await ActivityEnvironment().run(activities.assign_roles, inp)


def _pages_read(stack: Stack, user_id: str) -> list[str]:
    return [c.query["page"] for c in stack.auth0.faults.calls(LIST) if user_id in c.path]


async def test_a_user_with_few_roles_costs_one_read_and_one_write(stack: Stack):
    user_id = stack.auth0.create_user("few@example.com")["user_id"]
    stack.auth0.tenant.assign_roles(user_id, [stack.auth0.role_id("customer")])

    result = await _assign(stack, AssignRolesInput(user_id=user_id, roles=["member"]))

    assert result == AssignRolesResult(assigned=["member"], already_had=[])
    # One page was short, so no second read (the SDK's own pager would have asked for page 1).
    assert _pages_read(stack, user_id) == ["0"]
    assert [r["name"] for r in stack.auth0.tenant.roles_of(user_id)] == ["customer", "member"]
    # A retry reads again and assigns nothing.
    again = await _assign(stack, AssignRolesInput(user_id=user_id, roles=["member"]))
    assert again == AssignRolesResult(assigned=[], already_had=["member"])
    assert sum(1 for c in stack.auth0.faults.calls(ASSIGN) if user_id in c.path) == 1
    assert stack.auth0.tenant.role_assignments[user_id] == 2  # customer by hand, member once


async def test_roles_held_beyond_the_first_page_are_read_and_not_assigned_again(stack: Stack):
    user_id = stack.auth0.create_user("many@example.com")["user_id"]
    extra = [stack.auth0.tenant.add_role(f"team-{n:03d}")["id"] for n in range(ROLES_PAGE)]
    # A full first page of other roles, and "member" on the second.
    stack.auth0.tenant.assign_roles(user_id, [*extra, stack.auth0.role_id("member")])

    result = await _assign(stack, AssignRolesInput(user_id=user_id, roles=["member", "customer"]))

    assert result == AssignRolesResult(assigned=["customer"], already_had=["member"])
    assert _pages_read(stack, user_id) == ["0", "1"]
    assert len(stack.auth0.tenant.roles_of(user_id)) == ROLES_PAGE + 2
