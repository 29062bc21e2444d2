"""The demo pages of `invites dev`: funnel form, outbox (HTML and JSON), customer space."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.app import create_app
from tests.support.api import Api, serve


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"mail_backend": "outbox"}  # the dev default: mails kept whole, links included


async def test_the_outbox_shows_the_invitation_mail_with_a_working_link(api: Api):
    form = await api.http.get("/dev")
    assert form.status_code == 200
    assert "customer" in form.text and "/v1/invitations" in form.text
    created = await api.created("outbox@example.com", roles=["customer"])
    await api.stack.sent(api.stack.handles[-1])

    mails = (await api.http.get("/dev/api/outbox")).json()
    assert len(mails) == 1
    mail = mails[0]
    assert set(mail) == {"id", "to", "kind", "subject", "link", "invitation_id", "sent_at"}
    assert (mail["to"], mail["kind"], mail["invitation_id"]) == (
        "outbox@example.com",
        "invite",
        created["id"],
    )
    path = "/" + mail["link"].split("/", 3)[3]
    assert (await api.http.get(path)).status_code == 302  # the link in the mail works

    page = await api.http.get("/dev/outbox")
    assert page.status_code == 200
    assert mail["link"] in page.text
    assert mail["subject"] in page.text


async def test_the_customer_space_asks_to_sign_in_without_a_session(api: Api):
    page = await api.http.get("/app")
    assert page.status_code == 200
    assert "Sign in" in page.text
    assert "/authorize" in page.text and "invitation=" not in page.text


async def test_demo_pages_do_not_exist_in_production(api: Api):
    prod = api.stack.settings.model_copy(update={"env": "production"})
    async with (
        serve(create_app(prod, temporal=api.stack.env.client)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        for path in ("/dev", "/dev/outbox", "/dev/api/outbox", "/app"):
            assert (await http.get(path)).status_code == 404
