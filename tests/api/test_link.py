"""GET /i/{token}: verified before Temporal is asked; opening never uses the link up."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from api.app import create_app
from tests.support.api import Api, serve


async def test_a_pending_link_redirects_to_sign_in_with_the_hints(api: Api):
    _, token = await api.pending("link@example.com")
    response = await api.http.get(f"/i/{token}")
    assert response.status_code == 302
    target = urlsplit(response.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == "http://signin.test/authorize"
    query = parse_qs(target.query)
    assert query["client_id"] == ["funnel-app"]  # the configured URL's own parameters are kept
    assert query["invitation"] == [token]
    assert query["login_hint"] == ["link@example.com"]
    assert query["screen_hint"] == ["signup"]
    assert response.headers["cache-control"] == "no-store"


async def test_an_existing_account_is_sent_to_login(api: Api):
    api.stack.auth0.create_user("known@example.com")
    _, token = await api.pending("known@example.com")
    response = await api.http.get(f"/i/{token}")
    assert parse_qs(urlsplit(response.headers["location"]).query)["screen_hint"] == ["login"]


async def test_a_forged_token_is_404_without_asking_temporal(api: Api):
    _, token = await api.pending("link@example.com")
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    # The same app, but its Temporal client points at a closed port: any Temporal call fails.
    dead = await Client.connect("127.0.0.1:1", lazy=True, data_converter=pydantic_data_converter)
    app = create_app(api.stack.settings, temporal=dead)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.get(f"/i/{token}")).status_code == 503  # a real token needs Temporal
        for bad in (forged, "nonsense", "A" * 60, token + "A"):
            response = await http.get(f"/i/{bad}")
            assert response.status_code == 404
            assert "not valid" in response.text
        metrics = (await http.get("/metrics")).text
    assert 'invites_rejected_before_temporal_total{reason="forged_token",route="link"} 4.0' in metrics


async def test_opening_the_link_five_times_then_redeeming_is_accepted(api: Api):
    created, token = await api.pending("five@example.com")
    for _ in range(5):
        assert (await api.http.get(f"/i/{token}")).status_code == 302
    state = await api.stack.state(api.stack.handles[-1])
    assert (state.status, state.accepted_by) == ("pending", None)
    user = api.stack.auth0.create_user("five@example.com")
    response = await api.webhook(token, {"user_id": user["user_id"], "email": "five@example.com"})
    assert response.status_code == 200
    assert response.json()["result"] == "accepted"
    assert response.json()["invitation_id"] == created["id"]


async def test_an_expired_link_is_410_in_plain_words(api: Api):
    _, token = await api.pending("old@example.com", expires_in=3600, reminders=[])
    await api.stack.env.sleep(timedelta(hours=2))
    await api.stack.until(api.stack.handles[-1], lambda s: s.status == "expired")
    response = await api.http.get(f"/i/{token}")
    assert response.status_code == 410
    assert "expired" in response.text


async def test_a_used_and_a_replaced_link_are_410(api: Api):
    created, old = await api.pending("used@example.com")
    path = f"/v1/invitations/{created['id']}/resend"
    rotate = await api.http.post(path, json={"rotate": True}, headers=api.key)
    assert rotate.status_code == 202
    await api.stack.sent(api.stack.handles[-1], mails=2)
    new = api.stack.links("used@example.com")[-1]
    replaced = await api.http.get(f"/i/{old}")
    assert replaced.status_code == 410
    assert "newer invitation mail" in replaced.text
    user = api.stack.auth0.create_user("used@example.com")
    accepted = await api.webhook(new, {"user_id": user["user_id"], "email": "used@example.com"})
    assert accepted.status_code == 200
    used = await api.http.get(f"/i/{new}")
    assert used.status_code == 410
    assert "already used" in used.text


async def test_access_logs_never_carry_the_token(api: Api, caplog):
    import logging

    from api.redaction import RedactLinkTokens

    _, token = await api.pending("logs@example.com")
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/i/{token}?x=1", "1.1", 302),
        None,
    )
    assert RedactLinkTokens().filter(record)
    assert token not in record.getMessage()
    assert "/i/<redacted>?x=1" in record.getMessage()
    assert any(isinstance(f, RedactLinkTokens) for f in logging.getLogger("uvicorn.access").filters)
