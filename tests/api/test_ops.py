"""Ops routes over HTTP: read, list, revoke, resend, extend and reissue invitations.

Reads and steering run on the time-skipping server (days pass with `env.sleep`; the API reads
that server's clock). Lists need real visibility, so they run on the dev server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from invites.ids import invitation_id_for_reissue, new_invitation_id
from invites.invitations import handle_for
from invites.temporal import EXPIRES_AT
from tests.support.api import Api, api_for
from tests.support.auth0 import account
from tests.support.stack import DAY, Stack

READ, MANAGE = "read:invitations", "manage:invitations"
PUBLIC_FIELDS = {
    "id",
    "email",
    "status",
    "roles",
    "external_ref",
    "created_at",
    "expires_at",
    "accepted_by",
    "accepted_at",
    "reminders_sent",
    "grant",
    "mode",
    "source",
    "campaign",
    "delivered_at",
    "opened_at",
    "revoked_reason",
    "rollback",
    "rolled_back_at",
}


@pytest.fixture
async def dev_api(dev_stack: Stack) -> AsyncIterator[Api]:
    """The `api` fixture on the real dev server, whose visibility answers list queries."""
    async with api_for(dev_stack) as api, api.stack.worker():
        yield api


async def revoked(api: Api, invitation_id: str) -> None:
    response = await api.http.post(f"/v1/invitations/{invitation_id}/revoke", json={}, headers=api.key)
    assert response.status_code == 200, response.text


async def reissue(api: Api, invitation_id: str) -> httpx.Response:
    """POST .../reissue; the invitation it answers with is terminated at the test's end."""
    response = await api.http.post(f"/v1/invitations/{invitation_id}/reissue", headers=api.key)
    if response.status_code in (200, 201):
        api.stack.handles.append(handle_for(api.stack.client, response.json()["id"]))
    return response


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


# --- GET /v1/invitations/{id} ---------------------------------------------------------------


async def test_get_shows_the_invitation_as_invitation_public(api: Api):
    created = await api.created(
        "Read@Example.com", roles=["customer", "member"], external_ref="lead-read", expires_in=5 * 86400
    )
    await api.stack.sent(api.stack.handles[-1])
    response = await api.http.get(f"/v1/invitations/{created['id']}", headers=api.key)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == PUBLIC_FIELDS
    assert body["id"] == created["id"]
    assert body["email"] == "Read@example.com"
    assert (body["status"], body["roles"], body["external_ref"]) == (
        "pending",
        ["customer", "member"],
        "lead-read",
    )
    assert when(body["expires_at"]) - when(body["created_at"]) == 5 * DAY
    assert (body["accepted_by"], body["accepted_at"], body["reminders_sent"]) == (None, None, 0)


async def test_get_of_an_unknown_id_is_404(api: Api):
    response = await api.http.get(f"/v1/invitations/{new_invitation_id()}", headers=api.key)
    assert error(response) == (404, "not_found")


@pytest.mark.parametrize(
    "bad", ["nope", "inv_" + "U" * 26, "inv_01jd0z3q6w7n9v4x2b8c5m1k0t", "inv_" + "0" * 27]
)
async def test_get_of_a_malformed_id_is_422_not_500(api: Api, bad: str):
    response = await api.http.get(f"/v1/invitations/{bad}", headers=api.key)
    assert error(response) == (422, "invalid_request")
    assert "invitation_id" in response.json()["error"]["message"]


async def test_a_read_only_token_cannot_steer_invitations(api: Api):
    created, _ = await api.pending("ro@example.com")
    reader = api.bearer(api.user_token("auth0|viewer", permissions=[READ]))
    assert (await api.http.get(f"/v1/invitations/{created['id']}", headers=reader)).status_code == 200
    for action, body in [("revoke", {}), ("resend", {}), ("extend", {"expires_in": 7200}), ("reissue", None)]:
        response = await api.http.post(f"/v1/invitations/{created['id']}/{action}", json=body, headers=reader)
        assert error(response) == (403, "forbidden"), action
    assert (await api.http.post(f"/v1/invitations/{created['id']}/revoke", json={})).status_code == 401
    state = await api.stack.state(api.stack.handles[-1])
    assert (state.status, state.mails_sent) == ("pending", 1)


async def test_a_manage_token_steers_invitations(api: Api):
    created, _ = await api.pending("mgr@example.com")
    manager = api.bearer(api.user_token("auth0|ops", permissions=[MANAGE]))
    response = await api.http.post(f"/v1/invitations/{created['id']}/revoke", json={}, headers=manager)
    assert (response.status_code, response.json()["status"]) == (200, "revoked")


# --- revoke -----------------------------------------------------------------------------------


async def test_revoke_ends_the_invitation_and_its_link_answers_revoked(api: Api):
    created, token = await api.pending("rev@example.com")
    path = f"/v1/invitations/{created['id']}/revoke"
    response = await api.http.post(path, json={"reason": "sent by mistake"}, headers=api.key)
    assert response.status_code == 200
    assert (response.json()["id"], response.json()["status"]) == (created["id"], "revoked")
    final = await api.stack.handles[-1].result()
    assert (final.status, final.revoked_reason) == ("revoked", "sent by mistake")

    redeem = await api.webhook(token, account(api.stack.auth0, "rev@example.com"))
    assert (redeem.status_code, redeem.json()) == (410, {"result": "rejected", "reason": "revoked"})
    assert api.stack.auth0.role_assignments == {}

    again = await api.http.post(path, json={}, headers=api.key)
    assert error(again) == (410, "revoked")
    assert "reissue" in again.json()["error"]["message"]


async def test_revoke_right_after_revoke_is_refused_too(api: Api):
    created, _ = await api.pending("twice@example.com")
    path = f"/v1/invitations/{created['id']}/revoke"
    first, second = [await api.http.post(path, json={}, headers=api.key) for _ in range(2)]
    assert first.status_code == 200
    assert error(second) == (410, "revoked")  # whether or not the workflow has closed yet


async def test_revoke_of_an_accepted_invitation_is_409_already_redeemed(api: Api):
    created, token = await api.pending("acc@example.com", roles=["customer"])
    user = account(api.stack.auth0, "acc@example.com")
    assert (await api.webhook(token, user)).status_code == 200
    response = await api.http.post(f"/v1/invitations/{created['id']}/revoke", json={}, headers=api.key)
    assert error(response) == (409, "already_redeemed")
    state = (await api.http.get(f"/v1/invitations/{created['id']}", headers=api.key)).json()
    assert (state["status"], state["accepted_by"]) == ("accepted", user["user_id"])
    assert api.stack.auth0.role_names(user["user_id"]) == ["customer"]


async def test_revoke_of_an_unknown_invitation_is_404(api: Api):
    response = await api.http.post(f"/v1/invitations/{new_invitation_id()}/revoke", json={}, headers=api.key)
    assert error(response) == (404, "not_found")


async def test_revoke_reason_has_a_limit(api: Api):
    created, _ = await api.pending("long@example.com")
    response = await api.http.post(
        f"/v1/invitations/{created['id']}/revoke", json={"reason": "x" * 501}, headers=api.key
    )
    assert error(response) == (422, "invalid_request")
    assert (await api.stack.state(api.stack.handles[-1])).status == "pending"


# --- resend -----------------------------------------------------------------------------------


async def test_resend_sends_the_same_link_again(api: Api):
    created, token = await api.pending("again@example.com")
    response = await api.http.post(f"/v1/invitations/{created['id']}/resend", json={}, headers=api.key)
    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    await api.stack.sent(api.stack.handles[-1], mails=2)
    assert api.stack.links("again@example.com") == [token, token]
    accepted = await api.webhook(token, account(api.stack.auth0, "again@example.com"))
    assert (accepted.status_code, accepted.json()["result"]) == (200, "accepted")


async def test_resend_with_rotate_makes_the_old_link_stale_and_the_new_one_works(api: Api):
    created, old = await api.pending("rot@example.com", roles=["member"])
    response = await api.http.post(
        f"/v1/invitations/{created['id']}/resend", json={"rotate": True}, headers=api.key
    )
    assert response.status_code == 202
    state = await api.stack.until(api.stack.handles[-1], lambda s: s.mails_sent == 2)
    assert state.generation == 1
    new = api.stack.links("rot@example.com")[-1]
    assert new != old

    user = account(api.stack.auth0, "rot@example.com")
    stale = await api.webhook(old, user)
    assert (stale.status_code, stale.json()) == (410, {"result": "rejected", "reason": "stale_link"})
    assert (await api.stack.state(api.stack.handles[-1])).status == "pending"  # nothing changed
    accepted = await api.webhook(new, user)
    assert accepted.status_code == 200
    assert accepted.json() == {
        "result": "accepted",
        "invitation_id": created["id"],
        "roles": ["member"],
        "grant": "done",
    }


async def test_resend_of_an_ended_invitation_sends_nothing(api: Api):
    created, _ = await api.pending("gone@example.com")
    await revoked(api, created["id"])
    response = await api.http.post(f"/v1/invitations/{created['id']}/resend", json={}, headers=api.key)
    assert error(response) == (410, "revoked")
    assert len(api.stack.sendgrid.messages_to("gone@example.com")) == 1


async def test_resend_rejects_unknown_fields(api: Api):
    created, _ = await api.pending("typo@example.com")
    response = await api.http.post(
        f"/v1/invitations/{created['id']}/resend", json={"rotat": True}, headers=api.key
    )
    assert error(response) == (422, "invalid_request")


# --- extend -----------------------------------------------------------------------------------


async def test_extend_to_a_date_moves_the_expiry_timer(api: Api):
    created, token = await api.pending("ext@example.com", expires_in=2 * 86400, reminders=[])
    new_expiry = (await api.stack.now()).replace(microsecond=0) + 10 * DAY
    response = await api.http.post(
        f"/v1/invitations/{created['id']}/extend",
        json={"expires_at": new_expiry.isoformat()},
        headers=api.key,
    )
    assert response.status_code == 200
    assert (response.json()["status"], when(response.json()["expires_at"])) == ("pending", new_expiry)
    handle = api.stack.handles[-1]
    assert (await handle.describe()).typed_search_attributes.get(EXPIRES_AT) == new_expiry

    await api.stack.env.sleep(5 * DAY)  # past the original expiry
    assert (await api.stack.state(handle)).status == "pending"
    assert (await api.webhook(token, account(api.stack.auth0, "ext@example.com"))).status_code == 200


async def test_extend_by_seconds_from_now(api: Api):
    created, _ = await api.pending("secs@example.com", expires_in=3600)
    before = await api.stack.now()
    response = await api.http.post(
        f"/v1/invitations/{created['id']}/extend", json={"expires_in": 30 * 86400}, headers=api.key
    )
    assert response.status_code == 200
    expires_at = when(response.json()["expires_at"])
    assert before + 30 * DAY <= expires_at <= (await api.stack.now()) + 30 * DAY
    assert (await api.stack.state(api.stack.handles[-1])).expires_at == expires_at


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "invalid_request"),
        ({"expires_in": 7200, "expires_at": "2030-01-01T00:00:00Z"}, "invalid_request"),
        ({"expires_at": "2030-01-01T00:00:00"}, "invalid_request"),  # no time zone
        ({"expires_in": 60}, "invalid_request"),
        ({"expires_in": 91 * 86400}, "invalid_request"),
        ({"expires_at": "far-future"}, "invalid_request"),
        ({"expires_at": "+91d"}, "invalid_expiry"),
        ({"expires_at": "-1h"}, "invalid_expiry"),
    ],
    ids=["neither", "both", "naive", "too-short", "too-long-in", "not-a-date", "beyond-90-days", "past"],
)
async def test_extend_with_a_bad_expiry_is_422_and_changes_nothing(api: Api, body: dict, code: str):
    created, _ = await api.pending("bad-ext@example.com")
    now = await api.stack.now()
    relative = {"+91d": now + 91 * DAY, "-1h": now - timedelta(hours=1)}
    if body.get("expires_at") in relative:
        body = {"expires_at": relative[body["expires_at"]].isoformat()}
    response = await api.http.post(f"/v1/invitations/{created['id']}/extend", json=body, headers=api.key)
    assert error(response) == (422, code)
    state = await api.stack.state(api.stack.handles[-1])
    assert state.expires_at == when(created["expires_at"])


async def test_extend_after_expiry_is_410_expired(api: Api):
    created, _ = await api.pending("late@example.com", expires_in=3600, reminders=[])
    await api.stack.env.sleep(timedelta(hours=2))
    assert (await api.stack.handles[-1].result()).status == "expired"
    response = await api.http.post(
        f"/v1/invitations/{created['id']}/extend",
        json={"expires_at": ((await api.stack.now()) + 5 * DAY).isoformat()},
        headers=api.key,
    )
    assert error(response) == (410, "expired")


async def test_extend_of_an_accepted_invitation_is_409(api: Api):
    created, token = await api.pending("ext-acc@example.com")
    assert (await api.webhook(token, account(api.stack.auth0, "ext-acc@example.com"))).status_code == 200
    response = await api.http.post(
        f"/v1/invitations/{created['id']}/extend", json={"expires_in": 7200}, headers=api.key
    )
    assert error(response) == (409, "already_redeemed")


# --- reissue ----------------------------------------------------------------------------------


async def test_reissue_of_a_revoked_invitation_is_a_new_one_with_the_same_data(api: Api):
    data, metadata = {"plan": "pro", "quote": "Q-7"}, {"segment": "smb"}
    created, _ = await api.pending(
        "re@example.com", roles=["customer"], data=data, app_metadata=metadata, external_ref="lead-re"
    )
    old_id = created["id"]
    await revoked(api, old_id)

    response = await reissue(api, old_id)
    assert response.status_code == 201
    new = response.json()
    new_id = new["id"]
    assert new_id != old_id and new_id.startswith("inv_")
    assert (new["status"], new["email"], new["roles"]) == ("pending", "re@example.com", ["customer"])
    assert when(new["expires_at"]) - when(new["created_at"]) == 14 * DAY

    record = await api.stack.store.get_invitation(new_id)
    assert record is not None
    assert (record.data, record.app_metadata, record.reissued_from) == (data, metadata, old_id)
    assert (await api.stack.store.get_invitation(old_id)).data == data  # the old row stays

    # The new invitation sends its own mail, and its link accepts.
    await api.stack.sent(api.stack.handles[-1])
    token = api.stack.links("re@example.com")[-1]
    assert api.stack.signer.verify(token).invitation_id == new_id
    user = account(api.stack.auth0, "re@example.com")
    accepted = await api.webhook(token, user)
    assert (accepted.status_code, accepted.json()["invitation_id"]) == (200, new_id)
    assert api.stack.auth0.user(user["user_id"])["app_metadata"]["invites"]["data"]["segment"] == "smb"

    again = await reissue(api, old_id)
    assert (again.status_code, again.json()["id"], again.json()["status"]) == (200, new_id, "accepted")


@pytest.mark.parametrize("settings_overrides", [{"grantable_roles": ["customer", "admin"]}])
async def test_reissue_of_a_role_no_longer_grantable_is_422(api: Api):
    """Created while `admin` was grantable; the setting narrowed since (a second app with the
    narrower settings): the reissue is refused and creates nothing."""
    created, _ = await api.pending("narrowed@example.com", roles=["customer", "admin"])
    await revoked(api, created["id"])

    narrowed = api.stack.settings.model_copy(update={"grantable_roles": ["customer", "member"]})
    async with api_for(dataclasses.replace(api.stack, settings=narrowed), clock=api.stack.now) as later:
        response = await reissue(later, created["id"])
    assert error(response) == (422, "role_not_grantable")
    assert "admin" in response.json()["error"]["message"]
    assert await api.stack.store.get_invitation(invitation_id_for_reissue(created["id"])) is None
    # The app that still grants `admin` reissues it.
    assert (await reissue(api, created["id"])).status_code == 201


async def test_reissue_of_an_expired_invitation(api: Api):
    created, _ = await api.pending("exp@example.com", expires_in=3600, reminders=[], data={"n": 1})
    await api.stack.env.sleep(timedelta(hours=2))
    assert (await api.stack.handles[-1].result()).status == "expired"
    response = await reissue(api, created["id"])
    assert response.status_code == 201
    new_id = response.json()["id"]
    assert response.json()["status"] == "pending"
    assert when(response.json()["expires_at"]) - when(response.json()["created_at"]) == timedelta(hours=1)
    record = await api.stack.store.get_invitation(new_id)
    assert record is not None and (record.data, record.reissued_from) == ({"n": 1}, created["id"])
    await api.stack.sent(api.stack.handles[-1])
    assert [api.stack.signer.verify(t).invitation_id for t in api.stack.links("exp@example.com")] == [
        created["id"],
        new_id,
    ]
    again = await reissue(api, created["id"])
    assert (again.status_code, again.json()["id"]) == (200, new_id)


async def test_a_reissue_carries_the_funnel_ref_to_the_new_workflow(api: Api):
    created, _ = await api.pending("ref@example.com", external_ref="lead-ref")
    await revoked(api, created["id"])
    response = await reissue(api, created["id"])
    assert response.status_code == 201
    api.stack.handles.append(handle_for(api.stack.client, response.json()["id"]))
    assert response.json()["external_ref"] == "lead-ref"


async def test_a_funnel_idempotency_key_cannot_take_a_reissue_id(api: Api):
    created, _ = await api.pending("orig@example.com")
    squatter = await api.create("other@example.com", headers={"Idempotency-Key": f"reissue:{created['id']}"})
    assert squatter.status_code == 201
    await revoked(api, created["id"])
    response = await reissue(api, created["id"])
    assert response.status_code == 201
    assert response.json()["email"] == "orig@example.com"


async def test_a_reissue_keeps_the_old_lifetime_within_90_days(api: Api):
    created, _ = await api.pending("long-life@example.com", expires_in=80 * 86400, reminders=[])
    await api.stack.env.sleep(10 * DAY)
    extended = await api.http.post(
        f"/v1/invitations/{created['id']}/extend",
        json={"expires_at": ((await api.stack.now()) + 89 * DAY).isoformat()},
        headers=api.key,
    )
    assert extended.status_code == 200  # now 99 days after its creation
    await revoked(api, created["id"])
    response = await reissue(api, created["id"])
    assert response.status_code == 201
    api.stack.handles.append(handle_for(api.stack.client, response.json()["id"]))
    assert when(response.json()["expires_at"]) - when(response.json()["created_at"]) == 90 * DAY


@pytest.mark.parametrize("state", ["pending", "accepted"])
async def test_reissue_of_a_live_or_accepted_invitation_is_409_not_reissuable(api: Api, state: str):
    created, token = await api.pending(f"{state}@example.com")
    if state == "accepted":
        assert (await api.webhook(token, account(api.stack.auth0, f"{state}@example.com"))).status_code == 200
    response = await reissue(api, created["id"])
    assert error(response) == (409, "not_reissuable")
    assert len(api.stack.sendgrid.messages) == 1


async def test_reissue_of_an_unknown_invitation_is_404(api: Api):
    response = await reissue(api, new_invitation_id())
    assert error(response) == (404, "not_found")


# --- GET /v1/invitations (dev server: real visibility) --------------------------------------

VISIBILITY_TIMEOUT = 10.0


async def listing(api: Api, expected: int, **params: Any) -> dict[str, Any]:
    """GET the list until visibility has caught up and it holds `expected` items."""
    body: dict[str, Any] = {}
    async with asyncio.timeout(VISIBILITY_TIMEOUT):
        while True:
            response = await api.http.get("/v1/invitations", params=params, headers=api.key)
            assert response.status_code == 200, response.text
            body = response.json()
            if len(body["items"]) == expected:
                return body
            await asyncio.sleep(0.1)


@pytest.mark.devserver
async def test_list_filters_by_status_email_and_ref(dev_api: Api):
    api, tag = dev_api, uuid.uuid4().hex[:10]
    ada = await api.created(f"Ada.{tag}@Example.com", roles=["customer"], external_ref=f"ref-{tag}")
    bob = await api.created(f"bob.{tag}@example.com")
    await api.stack.sent(api.stack.handles[-1])
    revoked = await api.http.post(f"/v1/invitations/{bob['id']}/revoke", json={}, headers=api.key)
    assert revoked.status_code == 200

    by_email = await listing(api, 1, email=f"ADA.{tag}@example.COM")  # any case finds it
    [item] = by_email["items"]
    assert item["id"] == ada["id"]
    assert (item["email"], item["status"], item["external_ref"]) == (
        f"ada.{tag}@example.com",
        "pending",
        f"ref-{tag}",
    )
    assert when(item["expires_at"]) == when(ada["expires_at"])
    assert item["created_at"] is not None and item["closed_at"] is None

    assert [i["id"] for i in (await listing(api, 1, ref=f"ref-{tag}"))["items"]] == [ada["id"]]
    assert [
        i["id"] for i in (await listing(api, 1, status="revoked", email=f"bob.{tag}@example.com"))["items"]
    ] == [bob["id"]]
    assert (await listing(api, 0, status="pending", email=f"bob.{tag}@example.com"))["items"] == []
    assert (await listing(api, 0, status="accepted", ref=f"ref-{tag}"))["items"] == []


@pytest.mark.devserver
async def test_list_pages_with_next_page_token(dev_api: Api):
    api, email = dev_api, f"pages.{uuid.uuid4().hex[:10]}@example.com"
    ids = {(await api.created(email))["id"] for _ in range(2)}
    await listing(api, 2, email=email)

    first = await listing(api, 1, email=email, page_size=1)
    assert first["next_page_token"]
    second = await listing(api, 1, email=email, page_size=1, page_token=first["next_page_token"])
    assert {first["items"][0]["id"], second["items"][0]["id"]} == ids
    # A token continues the query it came from, not another one.
    other = await api.http.get(
        "/v1/invitations",
        params={"status": "pending", "page_size": 1, "page_token": first["next_page_token"]},
        headers=api.key,
    )
    assert error(other) == (422, "invalid_request")
    if second["next_page_token"]:  # the server may not know the list has ended
        rest = await api.http.get(
            "/v1/invitations",
            params={"email": email, "page_size": 1, "page_token": second["next_page_token"]},
            headers=api.key,
        )
        assert rest.json()["items"] == []


@pytest.mark.devserver
@pytest.mark.parametrize(
    "params",
    [
        {"page_token": "!!!not base64!!!"},
        {"page_token": "Z2FyYmFnZQ=="},  # base64, but not a token Temporal issued
        {"status": "lost"},
        {"email": 'a"@example.com'},
        {"page_size": 0},
        {"page_size": 201},
    ],
    ids=["not-base64", "foreign-token", "status", "quote", "size-0", "size-201"],
)
async def test_list_with_bad_parameters_is_422(dev_api: Api, params: dict[str, Any]):
    response = await dev_api.http.get("/v1/invitations", params=params, headers=dev_api.key)
    assert error(response) == (422, "invalid_request")


@pytest.mark.devserver
async def test_list_needs_the_read_permission(dev_api: Api):
    funnel = dev_api.bearer(dev_api.user_token("auth0|funnel", permissions=["create:invitations"]))
    assert error(await dev_api.http.get("/v1/invitations", headers=funnel)) == (403, "forbidden")
    assert error(await dev_api.http.get("/v1/invitations")) == (401, "unauthorized")
