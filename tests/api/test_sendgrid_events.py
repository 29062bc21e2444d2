"""POST /v1/webhooks/sendgrid over HTTP: SendGrid's signed Event Webhook applied to invitations
through their workflows, each event once."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from api.app import create_app
from sandbox.sendgrid_events import event, public_key_b64, signed_headers
from tests.support.api import Api, serve
from tests.support.auth0 import user_payload

URL = "/v1/webhooks/sendgrid"
KEY = ec.generate_private_key(ec.SECP256R1())  # made here: the test plays SendGrid
DAY = timedelta(days=1)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"sendgrid_event_public_key": public_key_b64(KEY)}


def _events_for(invitation_id: str, kind: str, seq: int = 0, **extra: Any) -> dict[str, Any]:
    args = {"invitation_id": invitation_id, "seq": str(seq), "mail_kind": "invite"}
    return event(kind, "someone@example.com", "msg", args, **extra)


async def _post(
    http: httpx.AsyncClient, events: list[Any], key: ec.EllipticCurvePrivateKey = KEY, at: int | None = None
) -> httpx.Response:
    body = json.dumps(events).encode()
    return await http.post(URL, content=body, headers=signed_headers(key, body, at))


async def _pending(api: Api, email: str, **body: Any) -> str:
    created, _ = await api.pending(email, **body)
    return created["id"]


async def _invitation(api: Api, invitation_id: str) -> dict[str, Any]:
    response = await api.http.get(f"/v1/invitations/{invitation_id}", headers=api.key)
    assert response.status_code == 200, response.text
    return response.json()


# --- the signature ---------------------------------------------------------------------------


async def test_a_signed_batch_is_taken(api: Api):
    invitation = await _pending(api, "signed@example.com")
    response = await _post(
        api.http, [_events_for(invitation, "processed"), _events_for(invitation, "delivered")]
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 2, "applied": 1, "duplicates": 0, "ignored": 1, "invalid": 0}


async def test_a_bad_missing_stale_or_reordered_signature_is_401_and_applies_nothing(api: Api):
    invitation = await _pending(api, "forged@example.com")
    events = [_events_for(invitation, "bounce", type="bounce", reason="550 no such user")]
    body = json.dumps(events).encode()
    other_key = ec.generate_private_key(ec.SECP256R1())
    good = signed_headers(KEY, body)
    reordered = json.dumps(events, sort_keys=True, indent=1).encode()  # same events, other bytes
    cases = {
        "other key": (body, signed_headers(other_key, body)),
        "missing": (body, {"Content-Type": "application/json"}),
        "no timestamp": (body, {k: v for k, v in good.items() if "Timestamp" not in k}),
        "stale": (body, signed_headers(KEY, body, int(time.time()) - 600)),
        "future": (body, signed_headers(KEY, body, int(time.time()) + 600)),
        "reordered body": (reordered, good),
        "timestamp swapped": (
            body,
            {**good, "X-Twilio-Email-Event-Webhook-Timestamp": str(int(time.time()) - 1)},
        ),
        "garbage signature": (body, {**good, "X-Twilio-Email-Event-Webhook-Signature": "not base64!"}),
    }
    for name, (content, headers) in cases.items():
        response = await api.http.post(URL, content=content, headers=headers)
        assert response.status_code == 401, name
        assert response.json()["error"]["code"] == "invalid_signature"
    assert (await _invitation(api, invitation))["status"] == "pending"


async def test_without_a_key_configured_every_post_is_401(api: Api):
    invitation = await _pending(api, "nokey@example.com")
    settings = api.stack.settings.model_copy(update={"sendgrid_event_public_key": None})
    app = create_app(settings, temporal=api.stack.client)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        response = await _post(http, [_events_for(invitation, "delivered")])
    assert response.status_code == 401
    assert (await _invitation(api, invitation))["delivered_at"] is None


async def test_a_signed_body_that_is_not_an_array_is_422(api: Api):
    body = b'{"event": "delivered"}'
    response = await api.http.post(URL, content=body, headers=signed_headers(KEY, body))
    assert response.status_code == 422


# --- what each event does --------------------------------------------------------------------


async def test_delivered_sets_delivered_at_once(api: Api):
    invitation = await _pending(api, "delivered@example.com")
    first = int(time.time()) - 30
    assert (await _post(api.http, [_events_for(invitation, "delivered", at=first)])).status_code == 200
    body = await _invitation(api, invitation)
    assert body["delivered_at"] == datetime.fromtimestamp(first, UTC).isoformat().replace("+00:00", "Z")
    # A later delivery (a reminder, say) keeps the first time.
    assert (await _post(api.http, [_events_for(invitation, "delivered", seq=1)])).status_code == 200
    assert (await _invitation(api, invitation))["delivered_at"] == body["delivered_at"]


async def test_a_batch_with_bad_events_applies_the_others(api: Api):
    one = await _pending(api, "one@example.com")
    two = await _pending(api, "two@example.com")
    batch: list[Any] = [
        "not an event",
        _events_for(one, "delivered"),
        {"event": "delivered", "invitation_id": two},  # no sg_event_id, no timestamp
        {**_events_for(two, "delivered"), "invitation_id": "inv_<script>"},
        _events_for(two, "delivered"),
        {**_events_for(two, "delivered"), "invitation_id": None},  # another application's mail
    ]
    response = await _post(api.http, batch)
    assert response.status_code == 200
    assert response.json() == {"received": 6, "applied": 2, "duplicates": 0, "ignored": 1, "invalid": 3}
    assert (await _invitation(api, one))["delivered_at"] is not None
    assert (await _invitation(api, two))["delivered_at"] is not None


async def test_a_repeated_sg_event_id_is_applied_once(api: Api):
    invitation = await _pending(api, "twice@example.com")
    spam = _events_for(invitation, "spamreport")
    assert (await _post(api.http, [spam, spam])).json()["applied"] == 1
    again = await _post(api.http, [spam])
    assert again.json() == {"received": 1, "applied": 0, "duplicates": 1, "ignored": 0, "invalid": 0}
    metrics = (await api.http.get("/metrics")).text
    assert 'invites_sendgrid_events_total{result="duplicates"} 2.0' in metrics


async def test_a_hard_bounce_ends_a_pending_invitation_undeliverable_and_no_reminder_goes_out(api: Api):
    invitation = await _pending(api, "gone@example.com")
    bounce = _events_for(invitation, "bounce", type="bounce", status="5.1.1", reason="550 no such user")
    assert (await _post(api.http, [bounce])).json()["applied"] == 1
    state = await api.stack.until(api.stack.handles[-1], lambda s: s.status == "undeliverable")
    assert state.undeliverable_reason == "SendGrid bounce: 5.1.1 550 no such user"
    await api.stack.env.sleep(8 * DAY)  # past both reminders
    assert len(api.stack.sendgrid.messages_to("gone@example.com")) == 1
    assert (await _invitation(api, invitation))["status"] == "undeliverable"
    # The CRM hears of it as of any other end.
    history = await api.stack.handles[-1].fetch_history()
    published = [
        json.loads(e.activity_task_scheduled_event_attributes.input.payloads[0].data)["type"]
        for e in history.events
        if e.activity_task_scheduled_event_attributes.activity_type.name == "publish_event"
    ]
    assert published[-1] == "invitation.undeliverable"


async def test_a_soft_bounce_and_a_deferral_change_nothing(api: Api):
    invitation = await _pending(api, "soft@example.com")
    events = [_events_for(invitation, "bounce", type="blocked"), _events_for(invitation, "deferred")]
    assert (await _post(api.http, events)).json()["ignored"] == 2
    body = await _invitation(api, invitation)
    assert (body["status"], body["delivered_at"]) == ("pending", None)


async def test_a_drop_ends_a_pending_invitation_but_not_an_accepted_one(api: Api):
    dropped = await _pending(api, "dropped@example.com")
    accepted, token = await api.pending("taken@example.com")
    api.stack.auth0.create_user("taken@example.com")
    assert (await api.webhook(token, user_payload(api.stack.auth0, "taken@example.com"))).status_code == 200
    await api.stack.handles[-1].result()
    batch = [
        _events_for(dropped, "dropped", reason="Bounced Address"),
        _events_for(accepted["id"], "dropped", reason="Bounced Address"),
    ]
    assert (await _post(api.http, batch)).json()["ignored"] == 1  # the accepted run has ended
    await api.stack.until(api.stack.handles[0], lambda s: s.status == "undeliverable")
    assert (await _invitation(api, accepted["id"]))["status"] == "accepted"


async def test_a_spam_report_stops_reminders_and_the_invitation_stays_valid(api: Api):
    invitation = await _pending(api, "spam@example.com")
    assert (await _post(api.http, [_events_for(invitation, "spamreport")])).json()["applied"] == 1
    await api.stack.until(api.stack.handles[-1], lambda s: s.reminders_stopped == "spamreport")
    await api.stack.env.sleep(8 * DAY)  # past both reminders (3 and 7 days), before the expiry
    assert len(api.stack.sendgrid.messages_to("spam@example.com")) == 1
    state = await api.stack.state(api.stack.handles[-1])
    assert (state.status, state.reminders_sent) == ("pending", 0)


async def test_an_unsubscribe_stops_reminders_too(api: Api):
    invitation = await _pending(api, "unsub@example.com")
    assert (await _post(api.http, [_events_for(invitation, "unsubscribe")])).json()["applied"] == 1
    await api.stack.until(api.stack.handles[-1], lambda s: s.reminders_stopped == "unsubscribe")
    await api.stack.env.sleep(15 * DAY)
    assert len(api.stack.sendgrid.messages_to("unsub@example.com")) == 1
    assert (await api.stack.handles[-1].result()).status == "expired"


# --- opening the link ------------------------------------------------------------------------


async def test_the_first_opening_sets_opened_at_once_and_uses_nothing_up(api: Api):
    created, token = await api.pending("opens@example.com")
    assert (await _invitation(api, created["id"]))["opened_at"] is None
    assert (await api.http.get(f"/i/{token}")).status_code == 302
    first = await api.stack.until(api.stack.handles[-1], lambda s: s.opened_at is not None)
    await api.stack.env.sleep(timedelta(hours=1))
    assert (await api.http.get(f"/i/{token}")).status_code == 302
    state = await api.stack.state(api.stack.handles[-1])
    assert (state.opened_at, state.status) == (first.opened_at, "pending")
    api.stack.auth0.create_user("opens@example.com")
    assert (await api.webhook(token, user_payload(api.stack.auth0, "opens@example.com"))).status_code == 200


# --- outages ---------------------------------------------------------------------------------


async def test_with_temporal_down_the_batch_is_503_and_its_retry_applies_it(api: Api):
    invitation = await _pending(api, "outage@example.com")
    batch = [_events_for(invitation, "delivered")]
    dead = await Client.connect("127.0.0.1:1", lazy=True, data_converter=pydantic_data_converter)
    async with (
        serve(create_app(api.stack.settings, temporal=dead)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        response = await _post(http, batch)
    assert response.status_code == 503
    assert response.headers["retry-after"]
    # SendGrid retries: the claim was released, so the retry applies the event.
    assert (await _post(api.http, batch)).json()["applied"] == 1
    assert (await _invitation(api, invitation))["delivered_at"] is not None
