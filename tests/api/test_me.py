"""GET /v1/me: a signed-in customer sees the invitations their account accepted, and only those."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from tests.support.api import Api


async def accept(api: Api, email: str, data: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Invite `email` over HTTP, then log in with the mailed link as a new account."""
    created, token = await api.pending(email, roles=["customer"], data=data)
    user = api.stack.auth0.create_user(email)
    redeemed = await api.webhook(token, {"user_id": user["user_id"], "email": email})
    assert redeemed.status_code == 200, redeemed.text
    await api.stack.until(api.stack.handles[-1], lambda s: s.grant == "done")  # the account link is written
    return created, user["user_id"]


async def test_each_user_sees_only_their_own_invitation_and_data(api: Api):
    ada_invitation, ada = await accept(api, "ada@example.com", {"plan": "pro", "seats": 5})
    bob_invitation, bob = await accept(api, "bob@example.com", {"plan": "team"})

    mine = await api.http.get("/v1/me", headers=api.bearer(api.user_token(ada)))
    assert mine.status_code == 200
    body = mine.json()
    assert body["user_id"] == ada
    [item] = body["invitations"]
    assert item["invitation_id"] == ada_invitation["id"]
    assert (item["email"], item["data"]) == ("ada@example.com", {"plan": "pro", "seats": 5})
    assert item["roles"] == body["roles"] == ["customer"]
    accepted_at = datetime.fromisoformat(item["accepted_at"])
    assert accepted_at >= datetime.fromisoformat(ada_invitation["created_at"])

    theirs = await api.http.get("/v1/me", headers=api.bearer(api.user_token(bob)))
    assert theirs.status_code == 200
    assert [(i["invitation_id"], i["data"]) for i in theirs.json()["invitations"]] == [
        (bob_invitation["id"], {"plan": "team"})
    ]
    assert "pro" not in theirs.text


async def test_an_account_invited_twice_holds_the_roles_of_both_invitations(api: Api):
    """The second acceptance's token claims only its own roles; /v1/me answers the account's."""
    user = api.stack.auth0.create_user("twice@example.com")
    first, token = await api.pending("twice@example.com", roles=["customer"], data={"plan": "pro"})
    assert (
        await api.webhook(token, {"user_id": user["user_id"], "email": "twice@example.com"})
    ).status_code == 200
    await api.stack.until(api.stack.handles[-1], lambda s: s.grant == "done")
    second, token = await api.pending("twice@example.com", roles=["member", "customer"], data={"seats": 3})
    redeemed = await api.webhook(token, {"user_id": user["user_id"], "email": "twice@example.com"})
    assert redeemed.json()["roles"] == ["member", "customer"]
    await api.stack.until(api.stack.handles[-1], lambda s: s.grant == "done")

    body = (await api.http.get("/v1/me", headers=api.bearer(api.user_token(user["user_id"])))).json()
    assert body["roles"] == ["customer", "member"]  # each once, sorted
    assert [(i["invitation_id"], i["roles"]) for i in body["invitations"]] == [
        (second["id"], ["member", "customer"]),  # newest acceptance first
        (first["id"], ["customer"]),
    ]
    assert sorted(api.stack.auth0.role_names(user["user_id"])) == body["roles"]  # what Auth0 holds


async def test_a_rolled_back_invitation_takes_its_roles_off_the_account(api: Api):
    user = api.stack.auth0.create_user("undo@example.com")
    kept, token = await api.pending("undo@example.com", roles=["customer"])
    await api.webhook(token, {"user_id": user["user_id"], "email": "undo@example.com"})
    await api.stack.until(api.stack.handles[-1], lambda s: s.grant == "done")
    undone, token = await api.pending("undo@example.com", roles=["member"])
    await api.webhook(token, {"user_id": user["user_id"], "email": "undo@example.com"})
    await api.stack.until(api.stack.handles[-1], lambda s: s.grant == "done")

    rolled = await api.http.post(
        f"/v1/invitations/{undone['id']}/rollback", json={"reason": "wrong"}, headers=api.key
    )
    assert rolled.status_code in (200, 202), rolled.text
    me = api.bearer(api.user_token(user["user_id"]))
    async with asyncio.timeout(10):
        while (body := (await api.http.get("/v1/me", headers=me)).json())["roles"] != ["customer"]:
            await asyncio.sleep(0.1)
    assert [i["invitation_id"] for i in body["invitations"]] == [kept["id"]]


async def test_a_user_with_no_accepted_invitation_sees_an_empty_list(api: Api):
    await api.created("pending@example.com", data={"secret": "s3"})
    await api.stack.sent(api.stack.handles[-1])
    user = api.stack.auth0.create_user("pending@example.com")  # signed up, never used the link
    response = await api.http.get("/v1/me", headers=api.bearer(api.user_token(user["user_id"])))
    assert response.status_code == 200
    assert response.json() == {"user_id": user["user_id"], "roles": [], "invitations": []}


async def test_an_ops_token_sees_only_its_own_account_not_everyone(api: Api):
    await accept(api, "ada@example.com", {"plan": "pro"})
    ops = api.user_token("auth0|ops", permissions=["read:invitations", "manage:invitations"])
    response = await api.http.get("/v1/me", headers=api.bearer(ops))
    assert response.status_code == 200
    assert response.json() == {"user_id": "auth0|ops", "roles": [], "invitations": []}


async def test_an_api_key_is_403_and_no_credentials_401(api: Api):
    with_key = await api.http.get("/v1/me", headers=api.key)
    assert with_key.status_code == 403
    assert with_key.json()["error"]["code"] == "forbidden"
    anonymous = await api.http.get("/v1/me")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
    other_api = api.stack.auth0.signing.access_token(
        issuer=api.stack.settings.auth0_issuer, audience="https://another-api.example/", subject="auth0|x"
    )
    forged = await api.http.get("/v1/me", headers=api.bearer(other_api))
    assert (forged.status_code, forged.json()["error"]["code"]) == (401, "invalid_token")
