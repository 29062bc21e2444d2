"""POST /v1/invitations over HTTP: create, idempotent repeats, conflicts, validation, auth."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from temporalio.service import RPCError, RPCStatusCode

from invites.db.engine import create_engine
from invites.db.tables import Invitation
from invites.ids import invitation_id_for_ref
from tests.support.api import Api


async def _stored_invitations(api: Api) -> int:
    engine = create_engine(api.stack.settings.database_url)
    try:
        async with engine.connect() as connection:
            return (await connection.execute(select(func.count()).select_from(Invitation))).scalar_one()
    finally:
        await engine.dispose()


async def test_create_answers_201_and_the_invitation_mail_goes_out(api: Api):
    body = await api.created(
        "Ada@Example.com", roles=["customer"], data={"plan": "pro"}, external_ref="lead-1"
    )
    assert body["status"] == "pending"
    assert body["email"] == "Ada@example.com"  # the domain is normalised, the local part kept
    assert body["roles"] == ["customer"]
    assert body["external_ref"] == "lead-1"
    assert body["id"].startswith("inv_")
    state = await api.stack.sent(api.stack.handles[-1])
    assert state.invitation_id == body["id"]
    record = await api.stack.store.get_invitation(body["id"])
    assert record is not None and record.data == {"plan": "pro"}


async def test_repeat_with_the_same_external_ref_returns_200_and_the_same_invitation(api: Api):
    first = await api.created(roles=["customer"], external_ref="lead-2")
    again = await api.create(roles=["customer"], external_ref="lead-2")
    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    await api.stack.sent(api.stack.handles[-1])
    assert len(api.stack.sendgrid.messages) == 1  # one workflow, one mail


async def test_repeat_with_the_same_idempotency_key_returns_200(api: Api):
    first = await api.create(headers={"Idempotency-Key": "k-123"}, roles=["member"])
    assert first.status_code == 201
    again = await api.create(headers={"Idempotency-Key": "k-123"}, roles=["member"])
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])


@pytest.mark.parametrize("how", ["external_ref", "idempotency_key"])
async def test_same_key_with_a_different_body_is_409(api: Api, how: str):
    key = {"external_ref": "lead-3"} if how == "external_ref" else {"headers": {"Idempotency-Key": "k-9"}}
    assert (await api.create(roles=["customer"], **key)).status_code == 201
    conflict = await api.create(roles=["member"], **key)
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "idempotency_conflict"


async def test_a_role_outside_the_grantable_ones_is_422_and_creates_nothing(api: Api):
    """`admin` exists in the tenant, but INVITES_GRANTABLE_ROLES (default customer,member) does
    not list it: refused before Auth0 is asked, nothing stored, no workflow started."""
    assert await _stored_invitations(api) == 0
    response = await api.create(roles=["customer", "admin"], external_ref="lead-admin")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "role_not_grantable"
    assert "admin" in error["message"] and "customer" not in error["message"]
    assert await _stored_invitations(api) == 0
    assert api.stack.handles == []
    assert api.stack.auth0.faults.calls("GET /api/v2/roles") == []
    workflow = api.stack.client.get_workflow_handle(f"invitation-{invitation_id_for_ref('lead-admin')}")
    with pytest.raises(RPCError) as missing:
        await workflow.describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND


def test_the_openapi_document_lists_role_not_grantable(api: Api):
    responses = api.app.openapi()["paths"]["/v1/invitations"]["post"]["responses"]
    assert "role_not_grantable" in responses["422"]["description"]


@pytest.mark.parametrize("settings_overrides", [{"grantable_roles": ["customer", "wizard"]}])
async def test_unknown_role_is_422_and_creates_nothing(api: Api):
    response = await api.create(roles=["customer", "wizard"])
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_role"
    assert "wizard" in response.json()["error"]["message"]
    assert api.stack.handles == []


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email"},
        {"email": "a@example.com", "roles": ["r"] * 21},
        {"email": "a@example.com", "data": {"blob": "x" * (64 * 1024)}},
        {"email": "a@example.com", "expires_in": 60},
        {"email": "a@example.com", "expires_in": 91 * 86400},
        {"email": "a@example.com", "unexpected": 1},
        {"email": "a@example.com", "email_policy": "whoever"},
        {"email": "a@example.com", "external_ref": 'quote"injection'},
        {"roles": ["customer"]},
    ],
    ids=[
        "email",
        "roles",
        "data",
        "short",
        "long",
        "unknown-field",
        "policy",
        "ref-quote",
        "no-email",
    ],
)
async def test_bad_input_is_422_with_a_clear_error(api: Api, body: dict):
    response = await api.http.post("/v1/invitations", json=body, headers=api.key)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"]
    assert api.stack.handles == []


async def test_malformed_json_is_422_not_500(api: Api):
    response = await api.http.post(
        "/v1/invitations", content=b"{not json", headers={**api.key, "content-type": "application/json"}
    )
    assert response.status_code == 422


async def test_without_credentials_401_and_without_permission_403(api: Api):
    assert (await api.http.post("/v1/invitations", json={"email": "a@example.com"})).status_code == 401
    wrong_key = await api.http.post(
        "/v1/invitations", json={"email": "a@example.com"}, headers={"Authorization": "Bearer nope-nope-nope"}
    )
    assert wrong_key.status_code == 401
    reader = api.user_token("auth0|ops", permissions=["read:invitations"])
    forbidden = await api.http.post(
        "/v1/invitations", json={"email": "a@example.com"}, headers=api.bearer(reader)
    )
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "forbidden"
    creator = api.user_token("auth0|funnel", permissions=["create:invitations"])
    ok = await api.http.post("/v1/invitations", json={"email": "a@example.com"}, headers=api.bearer(creator))
    assert ok.status_code == 201
    api.stack.handles.append(api.stack.env.client.get_workflow_handle(f"invitation-{ok.json()['id']}"))


async def test_an_empty_reminder_list_means_no_reminders(api: Api):
    from datetime import timedelta

    await api.created("quiet@example.com", reminders=[], expires_in=10 * 86400, locale="fr")
    handle = api.stack.handles[-1]
    await api.stack.sent(handle)
    await api.stack.env.sleep(timedelta(days=9))
    state = await api.stack.state(handle)
    assert (state.status, state.reminders_sent, state.mails_sent) == ("pending", 0, 1)
    mail = api.stack.sendgrid.messages_to("quiet@example.com")[0]
    assert mail.subject.startswith("Votre invitation")  # the locale reached the mail
