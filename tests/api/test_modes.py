"""`mode` on POST /v1/invitations and the webhook's token-less bodies, over HTTP."""

from __future__ import annotations

import json

from tests.support.api import Api
from tests.support.webhooks import WEBHOOK


async def test_mode_defaults_to_link_and_provisioned_is_shown(api: Api):
    link = await api.created("lin@example.com")
    assert link["mode"] == "link"
    made = await api.created("pro@example.com", mode="provisioned", external_ref="lead-pro")
    assert made["mode"] == "provisioned"
    await api.stack.sent(api.stack.handles[-1])
    shown = (await api.http.get(f"/v1/invitations/{made['id']}", headers=api.key)).json()
    assert shown["mode"] == "provisioned"
    again = await api.create("pro@example.com", mode="provisioned", external_ref="lead-pro")
    assert (again.status_code, again.json()["id"]) == (200, made["id"])
    other = await api.create("pro@example.com", mode="link", external_ref="lead-pro")
    assert other.status_code == 409  # the same ref with another mode is another request


async def test_an_unknown_mode_is_422(api: Api):
    response = await api.create("x@example.com", mode="magic")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


async def test_a_fallen_back_invitation_shows_link(api: Api):
    api.stack.auth0.create_user("has@example.com")
    made = await api.created("has@example.com", mode="provisioned")
    await api.stack.sent(api.stack.handles[-1])
    shown = (await api.http.get(f"/v1/invitations/{made['id']}", headers=api.key)).json()
    assert shown["mode"] == "link"


async def post(api: Api, body: dict) -> tuple[int, dict]:
    raw = json.dumps(body).encode()
    response = await api.http.post(WEBHOOK, content=raw, headers=api.sign(raw))
    return response.status_code, response.json()


USER = {"user_id": "auth0|u1", "email": "a@example.com", "email_verified": True}


async def test_a_redeem_body_needs_exactly_one_of_token_and_invitation_id(api: Api):
    both = {"type": "invitation.redeem", "invitation": "t", "invitation_id": "inv_01HZX7Q3J4C5B6N7M8P9R0S1T2"}
    for body in ({"type": "invitation.redeem"}, both):
        status, answer = await post(api, {**body, "user": USER})
        assert (status, answer["error"]["code"]) == (422, "invalid_request")
    status, answer = await post(api, {"type": "invitation.redeem", "invitation_id": "inv_x", "user": USER})
    assert status == 422


async def test_a_token_less_redeem_of_an_unknown_invitation_is_404(api: Api):
    body = {"type": "invitation.redeem", "invitation_id": "inv_01HZX7Q3J4C5B6N7M8P9R0S1T2", "user": USER}
    status, answer = await post(api, body)
    assert (status, answer["error"]["code"]) == (404, "invalid_link")


async def test_a_malformed_claim_is_422(api: Api):
    status, answer = await post(api, {"type": "invitation.claim", "user": {"email": "a@example.com"}})
    assert (status, answer["error"]["code"]) == (422, "invalid_request")
    status, answer = await post(
        api, {"type": "invitation.claim", "user": {**USER, "email": 'a"b@example.com'}}
    )
    assert (status, answer) == (200, {"result": "none", "invitations": []})  # never reaches a query
