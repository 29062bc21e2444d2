"""Personal data stays out of Temporal: encrypted payloads and failures, hashed email index."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import EventType

from api.app import create_app
from invites.codec import EncryptionCodec, UnknownPayloadKey, email_search_keys
from invites.temporal import EMAIL
from tests.support.api import Api, serve

OLD = ("k1", os.urandom(32))
NEW = ("k2", os.urandom(32))


def ring(*keys: tuple[str, bytes]) -> str:
    return ",".join(f"{kid}:{base64.b64encode(key).decode()}" for kid, key in keys)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"payload_keys": SecretStr(ring(OLD))}


def payloads_in(node: object) -> list[Payload]:
    """Every Payload anywhere inside protobuf messages, their repeated fields and maps."""
    if isinstance(node, Payload):
        return [node]
    if isinstance(node, Message):
        return [p for _, value in node.ListFields() for p in payloads_in(value)]
    if isinstance(node, str | bytes | int | float | bool):
        return []
    if hasattr(node, "values"):  # a protobuf map
        return [p for value in node.values() for p in payloads_in(value)]
    try:  # a repeated field (a sequence without __iter__), or a list of events
        items = list(node)  # type: ignore[call-overload]
    except TypeError:
        return []
    return [p for item in items for p in payloads_in(item)]


async def test_codec_round_trip_rotation_and_refusals():
    payload = Payload(metadata={"encoding": b"json/plain"}, data=b'{"email":"ada@example.com"}')
    (sealed,) = await EncryptionCodec([OLD]).encode([payload])
    assert b"ada@example.com" not in sealed.SerializeToString()
    assert sealed.metadata["encryption-key-id"] == b"k1"
    assert await EncryptionCodec([NEW, OLD]).decode([sealed]) == [payload]  # rotated ring
    with pytest.raises(UnknownPayloadKey):
        await EncryptionCodec([NEW]).decode([sealed])  # the old key was dropped
    tampered = Payload(metadata=sealed.metadata, data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    with pytest.raises(UnknownPayloadKey):
        await EncryptionCodec([OLD]).decode([tampered])
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b"1")
    assert await EncryptionCodec([OLD]).decode([plain]) == [plain]  # unencrypted passes through


async def test_history_holds_no_plaintext_and_the_codec_endpoint_decodes_it(api: Api):
    created = await api.created("Secret.Person@example.com", roles=["customer"], data={"phone": "+33 6 12"})
    handle = api.stack.handles[-1]
    await api.stack.sent(handle)
    user = api.stack.auth0.create_user("secret.person@example.com")
    token = api.stack.links("secret.person@example.com")[-1]
    assert (
        await api.webhook(token, {"user_id": user["user_id"], "email": "secret.person@example.com"})
    ).status_code == 200
    await handle.result()

    raw = api.stack.env.client.get_workflow_handle(handle.id)  # a client without the codec
    history_events = (await raw.fetch_history()).events
    payloads = payloads_in(history_events)
    # Search attribute values (they carry a "type") and the SDK's version markers (patch ids)
    # are not ours to encrypt; every other payload must be.
    ours = [e for e in history_events if not e.HasField("marker_recorded_event_attributes")]
    data = [p for p in payloads_in(ours) if "type" not in p.metadata]
    assert len(data) > 10
    for payload in payloads:
        assert b"secret.person" not in payload.data.lower()  # not even in search attributes
        assert b"+33 6 12" not in payload.data
    plain = [p for p in data if p.metadata["encoding"] != b"binary/encrypted"]
    assert plain == [], plain
    attrs = (await raw.describe()).typed_search_attributes
    email_key = attrs.get(EMAIL)
    assert email_key == email_search_keys(api.stack.settings, "secret.person@example.com")[0]
    assert "example.com" not in email_key

    events = (await raw.fetch_history()).events
    start = next(e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)
    body = json_format.MessageToJson(start.workflow_execution_started_event_attributes.input)
    response = await api.http.post(
        "/codec/decode", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    decoded = json_format.Parse(response.text, Payloads())
    inp = json.loads(decoded.payloads[0].data)
    assert inp["email"] == "Secret.Person@example.com"
    assert inp["invitation_id"] == created["id"]

    # After rotation the old history still decodes; with the old key gone it does not.
    for keys, status in (((NEW, OLD), 200), ((NEW,), 422)):
        settings = api.stack.settings.model_copy(update={"payload_keys": SecretStr(ring(*keys))})
        app = create_app(settings, temporal=api.stack.client)
        async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
            answer = await http.post(
                "/codec/decode", content=body, headers={"content-type": "application/json"}
            )
            assert answer.status_code == status, answer.text


async def test_failure_messages_are_encrypted_too(api: Api):
    # The first mail fails for now inside the look-up's activity (a result payload), then its
    # retry as `send_mail` is refused for good: an activity failure in history.
    api.stack.sendgrid.faults.status("POST /v3/mail/send", 503, times=1)
    api.stack.sendgrid.reject("bounce@example.com")
    await api.created("bounce@example.com")
    final = await api.stack.handles[-1].result()
    assert final.status == "undeliverable"
    assert "SendGrid rejected" in (final.undeliverable_reason or "")  # readable with the key
    raw = api.stack.env.client.get_workflow_handle(api.stack.handles[-1].id)
    events = (await raw.fetch_history()).events
    failures = [
        e.activity_task_failed_event_attributes.failure
        for e in events
        if e.HasField("activity_task_failed_event_attributes")
    ]
    assert failures, "the rejected mail left a failure in history"
    for failure in failures:
        assert failure.message == "Encoded failure"  # the real message is an encrypted attribute
        assert "SendGrid" not in failure.message + failure.stack_trace
    payloads = payloads_in(events)
    assert all(b"bounce@example.com" not in p.data for p in payloads)
    assert all(b"SendGrid" not in p.data for p in payloads)  # the first failure, in a result


async def test_codec_needs_ops_credentials_outside_development(api: Api):
    prod = api.stack.settings.model_copy(update={"env": "production"})
    async with (
        serve(create_app(prod, temporal=api.stack.client)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        body = json.dumps({"payloads": []})
        assert (await http.post("/codec/decode", content=body)).status_code == 401
        ok = await http.post("/codec/decode", content=body, headers={"Authorization": "Bearer dev-api-key"})
        assert (ok.status_code, ok.json()) == (200, {})
        preflight = await http.options(
            "/codec/decode",
            headers={"Origin": "http://127.0.0.1:8233", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.headers["access-control-allow-origin"] == "http://127.0.0.1:8233"


READER_KEY, MANAGER_KEY = "ops-reader-key-0001", "ops-manager-key-0001"


async def test_encoding_needs_the_manage_permission_and_decoding_the_read_one(api: Api):
    """Encoding makes payloads the workers will act on: a read-only key may only decode."""
    prod = api.stack.settings.model_copy(
        update={
            "env": "production",
            "api_keys": SecretStr(
                f"{READER_KEY}=read:invitations,{MANAGER_KEY}=read:invitations manage:invitations"
            ),
        }
    )
    body = json.dumps({"payloads": []})
    async with (
        serve(create_app(prod, temporal=api.stack.client)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        reader, manager = ({"Authorization": f"Bearer {key}"} for key in (READER_KEY, MANAGER_KEY))
        assert (await http.post("/codec/decode", content=body, headers=reader)).status_code == 200
        refused = await http.post("/codec/encode", content=body, headers=reader)
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")
        assert (await http.post("/codec/encode", content=body, headers=manager)).status_code == 200


async def test_cross_origin_requests_are_allowed_only_to_the_codec_and_only_from_the_ui(api: Api):
    ui, other = "http://127.0.0.1:8233", "https://evil.example"

    async def allowed(path: str, origin: str) -> str | None:
        preflight = await api.http.options(
            path, headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
        )
        return preflight.headers.get("access-control-allow-origin")

    assert await allowed("/codec/decode", ui) == ui
    assert await allowed("/codec/decode", other) is None
    assert await allowed("/v1/invitations", ui) is None
    assert await allowed("/v1/webhooks/auth0", ui) is None
    created = await api.http.post(
        "/v1/invitations", json={"email": "cors@example.com"}, headers={**api.key, "Origin": ui}
    )
    assert "access-control-allow-origin" not in created.headers
    api.stack.handles.append(api.stack.client.get_workflow_handle(f"invitation-{created.json()['id']}"))
