"""GET /v1/stats/funnel over HTTP, on SQLite and PostgreSQL: after a scripted mix of invitations
(accepted, expired, revoked, bounced, opened but not accepted), the counts equal the mix per
source; bad parameters are 422. And `source` / `campaign` on create."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from sandbox.sendgrid_events import event, public_key_b64, signed_headers
from tests.support import postgres
from tests.support.api import Api
from tests.support.auth0 import user_payload

KEY = ec.generate_private_key(ec.SECP256R1())
BACKENDS = [pytest.param("sqlite", id="sqlite")]
if postgres.POSTGRES_URL:
    BACKENDS.append(pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres))


@pytest.fixture(params=BACKENDS)
async def settings_overrides(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Any]]:
    overrides: dict[str, Any] = {"sendgrid_event_public_key": public_key_b64(KEY), "funnel_sources": "web"}
    if request.param == "sqlite":
        yield overrides
        return
    name = await postgres.create_database()
    try:
        yield {**overrides, "database_url": postgres.database_url(name)}
    finally:
        await postgres.drop_database(name)


async def _sendgrid(api: Api, invitation_id: str, kind: str, **extra: Any) -> None:
    body = json.dumps(
        [event(kind, "x@example.com", "m", {"invitation_id": invitation_id, "seq": "0"}, **extra)]
    )
    response = await api.http.post(
        "/v1/webhooks/sendgrid", content=body.encode(), headers=signed_headers(KEY, body.encode())
    )
    assert response.json()["applied"] == 1, response.text


async def _stats(api: Api, **params: str) -> dict[str, Any]:
    response = await api.http.get("/v1/stats/funnel", params=params, headers=api.key)
    assert response.status_code == 200, response.text
    return response.json()


async def _accept(api: Api, token: str, email: str) -> None:
    api.stack.auth0.create_user(email)
    assert (await api.webhook(token, user_payload(api.stack.auth0, email))).status_code == 200


def _seconds(body: dict[str, Any], field: str) -> float:
    return datetime.fromisoformat(body[field]).timestamp()


async def test_funnel_counts_equal_a_scripted_mix_per_source(api: Api):
    stack = api.stack
    # web: accepted (delivered, opened), expired (delivered), revoked (delivered), opened but not
    # accepted (delivered); ads: bounced, accepted (delivered, opened). One with no source.
    accepted, accepted_token = await api.pending("a@example.com", source="web", campaign="spring")
    expiring, _ = await api.pending("b@example.com", source="web", expires_in=3600)
    revoked, _ = await api.pending("c@example.com", source="web")
    opened, opened_token = await api.pending("d@example.com", source="web", campaign="spring")
    bounced, _ = await api.pending("e@example.com", source="ads")
    fast, fast_token = await api.pending("f@example.com", source="ads")
    await api.pending("g@example.com")

    for invitation in (accepted, expiring, revoked, opened, fast):
        await _sendgrid(api, invitation["id"], "delivered")
    await _sendgrid(api, bounced["id"], "bounce", type="bounce", reason="550 unknown user")
    for token in (accepted_token, opened_token, fast_token):
        assert (await api.http.get(f"/i/{token}")).status_code == 302
    await _accept(api, fast_token, "f@example.com")
    response = await api.http.post(f"/v1/invitations/{revoked['id']}/revoke", json={}, headers=api.key)
    assert response.status_code in (200, 202)
    await stack.env.sleep(timedelta(hours=2))  # the one-hour invitation expires
    await _accept(api, accepted_token, "a@example.com")

    expected = {
        "web": dict(created=4, delivered=4, opened=2, accepted=1, expired=1, revoked=1, undeliverable=0),
        "ads": dict(created=2, delivered=1, opened=1, accepted=1, expired=0, revoked=0, undeliverable=1),
        None: dict(created=1, delivered=0, opened=0, accepted=0, expired=0, revoked=0, undeliverable=0),
    }
    stages = list(expected["web"])
    async with asyncio.timeout(20):  # the funnel is written by the workflows' local activities
        while True:
            body = await _stats(api)
            groups = {g["key"]: g for g in body["groups"]}
            if {k: {s: g[s] for s in stages} for k, g in groups.items()} == expected:
                break
            await asyncio.sleep(0.2)

    states = {
        i["id"]: await (await api.http.get(f"/v1/invitations/{i['id']}", headers=api.key)).aread()
        for i in (accepted, fast)
    }
    waits = {
        k: _seconds(json.loads(v), "accepted_at") - _seconds(json.loads(v), "created_at")
        for k, v in states.items()
    }
    web, ads = groups["web"], groups["ads"]
    assert (web["accept_rate"], ads["accept_rate"], groups[None]["accept_rate"]) == (0.25, 0.5, 0.0)
    assert (
        web["time_to_accept_s"]["p50"]
        == web["time_to_accept_s"]["p90"]
        == pytest.approx(waits[accepted["id"]], abs=0.01)
    )
    assert ads["time_to_accept_s"]["p50"] == pytest.approx(waits[fast["id"]], abs=0.01)
    assert groups[None]["time_to_accept_s"] == {"p50": None, "p90": None}
    assert [g["key"] for g in body["groups"]] == ["web", "ads", None]  # largest group first

    campaigns = {g["key"]: g for g in (await _stats(api, by="campaign"))["groups"]}
    assert (
        campaigns["spring"]["created"],
        campaigns["spring"]["opened"],
        campaigns["spring"]["accepted"],
    ) == (2, 2, 1)

    # /metrics: the same totals, `source` bounded by INVITES_FUNNEL_SOURCES (ads is `other`).
    metrics = (await api.http.get("/metrics")).text
    assert 'invites_funnel_invitations_total{source="web",stage="created"} 4.0' in metrics
    assert 'invites_funnel_invitations_total{source="other",stage="undeliverable"} 1.0' in metrics
    assert 'invites_funnel_invitations_total{source="none",stage="created"} 1.0' in metrics


async def test_the_window_counts_invitations_created_in_it(api: Api):
    await api.created("early@example.com", source="web")
    now = await api.stack.now()
    later = (now + timedelta(minutes=1)).isoformat()
    assert (await _stats(api, **{"from": later, "to": (now + timedelta(days=1)).isoformat()}))["groups"] == []
    window = {"from": (now - timedelta(minutes=1)).isoformat(), "to": later}
    async with asyncio.timeout(10):  # recorded by the workflow's first task
        while not (body := await _stats(api, **window))["groups"]:
            await asyncio.sleep(0.1)
    assert [(g["key"], g["created"]) for g in body["groups"]] == [("web", 1)]
    assert set(body) == {"from", "to", "groups"}


@pytest.mark.parametrize(
    "params",
    [
        {"from": "yesterday"},
        {"to": "2026-13-01T00:00:00Z"},
        {"from": "2026-12-01T00:00:00"},  # no time zone
        {"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"},
        {"from": "2026-12-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"},
        {"from": "2024-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},  # over 400 days
        {"by": "email"},
    ],
)
async def test_bad_parameters_are_422(api: Api, params: dict[str, str]):
    response = await api.http.get("/v1/stats/funnel", params=params, headers=api.key)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"


async def test_the_stats_need_read_invitations(api: Api):
    assert (await api.http.get("/v1/stats/funnel")).status_code == 401
    token = api.user_token("auth0|someone", permissions=["create:invitations"])
    assert (await api.http.get("/v1/stats/funnel", headers=api.bearer(token))).status_code == 403


async def test_source_and_campaign_are_keywords_shown_with_the_invitation(api: Api):
    body = await api.created("kw@example.com", source="partner.acme", campaign="2026-q4_launch")
    assert (body["source"], body["campaign"], body["delivered_at"], body["opened_at"]) == (
        "partner.acme",
        "2026-q4_launch",
        None,
        None,
    )
    for bad in (
        {"source": "has space"},
        {"source": "x" * 65},
        {"campaign": "<b>"},
        {"campaign": ""},
        {"source": 7},
    ):
        response = await api.create("bad@example.com", **bad)
        assert response.status_code == 422, bad
