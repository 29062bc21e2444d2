"""The `/ops` page as served (static, in production too, held to its own origin) and
`GET /v1/stats/time-to-accept`, the histogram it draws, after invitations accepted through the
whole path (API, workflow, the Action's webhook) at known delays on the time-skipping clock.
The browser test `tests/e2e/test_ops_page.py` signs in and reads the page."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.routes.ops_page import CONTENT_SECURITY_POLICY
from tests.support.api import Api, serve


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"temporal_ui_url": "https://temporal.example.com/", "temporal_namespace": "invites-prod"}


async def test_the_page_is_static_and_served_in_production(api: Api):
    prod = api.stack.settings.model_copy(update={"env": "production"})
    async with (
        serve(create_app(prod, temporal=api.stack.client)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        page = await http.get("/ops")
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert page.headers["referrer-policy"] == "no-referrer"
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, flags=re.DOTALL)
        assert scripts == [(' src="/ops/assets/ops.js" defer', "")]  # no inline script
        assert "inv_" not in page.text and "@" not in page.text  # no data without credentials
        for asset, kind in (("ops.js", "text/javascript"), ("ops.css", "text/css")):
            response = await http.get(f"/ops/assets/{asset}")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith(kind)
        assert (await http.get("/ops/assets/index.html")).status_code == 404
        assert (await http.get("/ops/assets/..%2F..%2Fapp.py")).status_code == 404


def test_the_policy_allows_this_origin_only_and_no_form_submission():
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"  # no inline script, no eval
    assert directives["connect-src"] == "'self'"
    assert directives["form-action"] == "'none'"  # the sign-in form cannot put the key in a URL


async def test_the_page_links_each_run_to_the_configured_temporal_ui(api: Api):
    page = (await api.http.get("/ops")).text
    assert (
        'data-run-url="https://temporal.example.com/namespaces/invites-prod/workflows/invitation-INVITATION_ID"'
        in page
    )


async def test_the_page_signs_in_with_a_password_field_and_keeps_the_key_out_of_urls(api: Api):
    page = (await api.http.get("/ops")).text
    assert re.search(r'<input id="credential"[^>]*type="password"', page)
    script = (await api.http.get("/ops/assets/ops.js")).text
    assert "sessionStorage" in script and "localStorage" not in script
    assert "Authorization: `Bearer ${sessionStorage.getItem(CREDENTIAL)}`" in script
    fetched = script.replace('"http://www.w3.org/2000/svg"', "")  # SVG's namespace, not a host
    assert "http://" not in fetched and "https://" not in fetched  # this origin only


async def accepted_after(api: Api, email: str, delay: timedelta, source: str) -> str:
    created, token = await api.pending(email, roles=["customer"], source=source)
    await api.stack.env.sleep(delay)
    user = api.stack.auth0.create_user(email, email_verified=True)
    response = await api.webhook(token, user)
    assert response.status_code == 200, response.text
    return created["id"]


async def histogram(api: Api, **query: str) -> httpx.Response:
    return await api.http.get("/v1/stats/time-to-accept", params=query, headers=api.key)


async def test_time_to_accept_counts_each_acceptance_in_its_bucket_per_source(api: Api):
    await accepted_after(api, "quick@example.com", timedelta(seconds=20), "web")
    await accepted_after(api, "hours@example.com", timedelta(hours=2), "web")
    await accepted_after(api, "days@example.com", timedelta(days=2), "partner")
    await api.created("waiting@example.com", roles=["customer"], source="web")  # pending: not counted

    expected = {"web": [1, 0, 0, 1, 0, 0, 0, 0], "partner": [0, 0, 0, 0, 0, 1, 0, 0]}
    async with asyncio.timeout(20):  # the funnel row is written by the workflow after the accept
        while True:
            body = (await histogram(api, by="source")).json()
            if {g["key"]: g["counts"] for g in body["groups"]} == expected:
                break
            await asyncio.sleep(0.1)
    assert body["bounds_s"] == [60, 600, 3600, 21600, 86400, 259200, 604800]
    assert [g["key"] for g in body["groups"]] == ["web", "partner"]  # the largest group first
    by_campaign = (await histogram(api, by="campaign")).json()
    assert by_campaign["groups"] == [{"key": None, "counts": [1, 0, 0, 1, 0, 1, 0, 0]}]
    now = await api.stack.now()
    later = {"from": (now + timedelta(hours=1)).isoformat(), "to": (now + timedelta(days=1)).isoformat()}
    assert (await histogram(api, **later)).json()["groups"] == []


async def test_time_to_accept_needs_read_permission_and_a_sane_window(api: Api):
    assert (await api.http.get("/v1/stats/time-to-accept")).status_code == 401
    user = api.stack.auth0.create_user("nobody@example.com", email_verified=True)
    token = api.user_token(user["user_id"], permissions=[])
    refused = await api.http.get("/v1/stats/time-to-accept", headers=api.bearer(token))
    assert refused.status_code == 403
    now = (await api.stack.now()).isoformat()
    backwards = await histogram(api, **{"from": now, "to": now})
    assert (backwards.status_code, backwards.json()["error"]["code"]) == (422, "invalid_request")
    too_long = await histogram(api, **{"from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"})
    assert too_long.status_code == 422
    assert (await histogram(api, by="email")).status_code == 422
