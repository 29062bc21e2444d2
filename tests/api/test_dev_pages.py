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


async def test_the_customer_space_reads_the_account_in_process_whatever_the_host_header(api: Api):
    """/app reads /v1/me with the visitor's access token: in process, never from the host the
    request's Host header names (it would receive the token)."""
    user = api.stack.auth0.create_user("host@example.com", email_verified=True)
    access = api.user_token(user["user_id"])
    id_token = api.stack.auth0.signing.sign({"sub": user["user_id"], "email": "host@example.com"})
    cookie = f"invites_dev_at={access}; invites_dev_id={id_token}"
    page = await api.http.get("/app", headers={"Host": "evil.example:1", "Cookie": cookie})
    assert page.status_code == 200
    assert "host@example.com" in page.text and "Sign in" not in page.text


@pytest.mark.parametrize(
    ("env", "api_docs", "served"),
    [("development", None, True), ("production", None, False), ("production", True, True)],
)
async def test_the_docs_pages_are_on_in_development_and_a_setting_in_production(
    api: Api, env: str, api_docs: bool | None, served: bool
):
    settings = api.stack.settings.model_copy(update={"env": env, "api_docs": api_docs})
    async with (
        serve(create_app(settings, temporal=api.stack.client)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        assert ((await http.get("/docs")).status_code == 200) is served
        assert (await http.get("/openapi.json")).status_code == 200
