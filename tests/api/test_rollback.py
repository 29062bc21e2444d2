"""POST /v1/invitations/{id}/rollback over HTTP: ops undo a wrong acceptance.

The rollback itself (what is removed and what stays) is proven in tests/workflows/test_rollback.py;
here: the route's answers, its refusals, and what the invitation looks like afterwards to the
link, the Action's webhook and the lists (the dev server, for visibility).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.api import Api, api_for
from tests.support.auth0 import account, user_payload
from tests.support.stack import Stack

READ, MANAGE = "read:invitations", "manage:invitations"


def error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


async def accepted_over_http(api: Api, email: str) -> tuple[str, str, str]:
    """An invitation accepted through the webhook: (invitation id, its link token, the user id)."""
    created, token = await api.pending(email, roles=["customer"])
    user = account(api.stack.auth0, email)
    response = await api.webhook(token, user)
    assert (response.status_code, response.json()["result"]) == (200, "accepted"), response.text
    await api.stack.handles[-1].result()
    return created["id"], token, user["user_id"]


async def rollback(
    api: Api, invitation_id: str, body: object, headers: dict[str, str] | None = None
) -> httpx.Response:
    path = f"/v1/invitations/{invitation_id}/rollback"
    return await api.http.post(path, json=body, headers=api.key if headers is None else headers)


async def test_rollback_revokes_the_invitation_and_removes_its_roles(api: Api):
    invitation_id, token, uid = await accepted_over_http(api, "undo@example.com")
    assert api.stack.auth0.role_names(uid) == ["customer"]

    response = await rollback(api, invitation_id, {"reason": "sent to the wrong address"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["rollback"], body["revoked_reason"]) == (
        "revoked",
        "done",
        "sent to the wrong address",
    )
    assert body["accepted_by"] == uid and body["rolled_back_at"]
    assert api.stack.auth0.role_names(uid) == []
    read = await api.http.get(f"/v1/invitations/{invitation_id}", headers=api.key)
    assert read.json() == body
    # The link and the Action both hear `revoked` now.
    assert (await api.http.get(f"/i/{token}")).status_code == 410
    again = await api.webhook(token, user_payload(api.stack.auth0, "undo@example.com"))
    assert (again.status_code, again.json()["reason"]) == (410, "revoked")
    # Asked again: the same rollback, not a second one.
    repeat = await rollback(api, invitation_id, {"reason": "again"})
    assert (repeat.status_code, repeat.json()) == (200, body)


async def test_rollback_refuses_what_it_cannot_undo(api: Api):
    created, _ = await api.pending("notyet@example.com")
    response = await rollback(api, created["id"], {"reason": "changed my mind"})
    assert error(response) == (409, "not_accepted")
    assert "Revoke it instead" in response.json()["error"]["message"]
    assert error(await rollback(api, "inv_00000000000000000000000000", {"reason": "x"})) == (404, "not_found")
    for body in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}, {"reason": "x", "extra": 1}):
        assert error(await rollback(api, created["id"], body)) == (422, "invalid_request"), body
    reader = api.bearer(api.user_token("auth0|viewer", permissions=[READ]))
    assert error(await rollback(api, created["id"], {"reason": "x"}, reader)) == (403, "forbidden")
    assert (await rollback(api, created["id"], {"reason": "x"}, {})).status_code == 401
    state = await api.stack.state(api.stack.handles[-1])
    assert state.status == "pending"


@pytest.fixture
async def dev_api(dev_stack: Stack) -> AsyncIterator[Api]:
    async with api_for(dev_stack) as api, api.stack.worker():
        yield api


async def listed(api: Api, **query: str) -> list[dict[str, object]]:
    response = await api.http.get("/v1/invitations", params=query, headers=api.key)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_lists_show_a_rolled_back_invitation_once_as_revoked(dev_api: Api):
    invitation_id, _, _ = await accepted_over_http(dev_api, "listed-undo@example.com")
    manager = dev_api.bearer(dev_api.user_token("auth0|ops", permissions=[MANAGE]))
    response = await rollback(dev_api, invitation_id, {"reason": "duplicate account"}, manager)
    assert response.json()["rollback"] == "done"

    email = "listed-undo@example.com"
    async with asyncio.timeout(15):  # visibility follows the runs within moments
        while [row["status"] for row in await listed(dev_api, email=email)] != ["revoked"]:
            await asyncio.sleep(0.2)
    assert await listed(dev_api, email=email, status="accepted") == []
    [row] = await listed(dev_api, email=email, status="revoked")
    assert row["id"] == invitation_id
