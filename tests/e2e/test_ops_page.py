"""The `/ops` page in Chromium on a fresh `invites dev`: invitations created through the API with
a source and a campaign, some opened, some accepted in the browser (sign-up from the mail's
link), one revoked, one bounced by SendGrid's stand-in; ops sign in with an Auth0 access token
and read the funnel, the histogram and the pending list. Its screenshot lands in
test-artifacts/e2e/ops.png; with INVITES_UPDATE_SCREENSHOTS=1 also in docs/img/ops.png, the
one the README shows."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.support.invites_dev import ARTIFACTS, Dev, running_invites_dev

pytestmark = pytest.mark.e2e
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "ops.png"
PASSWORD = "correct horse battery"
SETTLE_S = 2  # the funnel's numbers are taken once they have not moved for this long
STAGES = ("created", "delivered", "opened", "accepted", "expired", "revoked", "undeliverable")


class Mix(NamedTuple):
    """One source's invitations: how many are created, and of them how many are opened only,
    accepted in the browser, revoked, and sent to an address that bounces (SendGrid's
    stand-in bounces mail to bounce@…)."""

    campaign: str
    created: int
    opened: int = 0
    accepted: int = 0
    revoked: int = 0
    bounced: int = 0


MIX = {
    "website": Mix("winter-launch", created=4, opened=1, accepted=2),
    "partner-portal": Mix("partners-q4", created=3, accepted=1, revoked=1),
    "newsletter": Mix("winter-launch", created=3, opened=1, bounced=1),
}


@pytest.fixture(scope="module")
def ops_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    """A fresh `invites dev` of its own, so the page shows exactly this test's invitations."""
    with running_invites_dev(tmp_path_factory.mktemp("ops-dev")) as dev:
        yield dev


async def mail_link(http: httpx.AsyncClient, invitation_id: str) -> str:
    async with asyncio.timeout(30):
        while True:
            for mail in (await http.get("/dev/api/outbox")).json():
                if mail["invitation_id"] == invitation_id and mail["link"]:
                    return mail["link"]
            await asyncio.sleep(0.25)


async def accept_in_the_browser(browser: Browser, link: str, email: str) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(link)
    await page.fill('form[action="/u/signup"] input[name="password"]', PASSWORD)
    await page.click('form[action="/u/signup"] button[type="submit"]')
    await expect(page.locator("#me-email")).to_have_text(email)
    await context.close()


async def access_token(dev: Dev, email: str, *, admin: bool) -> str:
    """A sandbox user (with the `admin` role, whose permissions include read:invitations, or
    none) and an access token for the API from the password grant, as a tenant issues them."""
    client = {"client_id": "dev-client", "client_secret": "dev-secret"}
    async with httpx.AsyncClient(base_url=dev.auth0, timeout=15) as auth0:
        management = await auth0.post(
            "/oauth/token",
            json={**client, "grant_type": "client_credentials", "audience": f"{dev.auth0}/api/v2/"},
        )
        headers = {"Authorization": f"Bearer {management.json()['access_token']}"}
        user = await auth0.post(
            "/api/v2/users",
            json={"email": email, "password": PASSWORD, "connection": "Username-Password-Authentication"},
            headers=headers,
        )
        user_id = user.json()["user_id"]
        if admin:
            roles = (await auth0.get("/api/v2/roles", headers=headers)).json()
            admin_id = next(r["id"] for r in roles if r["name"] == "admin")
            assigned = await auth0.post(
                f"/api/v2/users/{user_id}/roles", json={"roles": [admin_id]}, headers=headers
            )
            assert assigned.status_code in (200, 201, 204)
        token = await auth0.post(
            "/oauth/token",
            data={**client, "grant_type": "password", "username": email, "password": PASSWORD},
        )
        return token.json()["access_token"]


async def play_the_mix(dev: Dev, browser: Browser) -> dict[str, list[str]]:
    """Create, accept, open, revoke and bounce as MIX says (in that order of the invitations);
    returns the invitations left pending, per source."""
    pending: dict[str, list[str]] = {}
    async with dev.client() as http, httpx.AsyncClient() as browserless:
        for source, mix in MIX.items():
            ids, emails = [], []
            for n in range(mix.created):
                tag = uuid.uuid4().hex[:4]
                bounces = n >= mix.created - mix.bounced
                email = f"bounce@{source}-{tag}.example.com" if bounces else f"{source}-{n}-{tag}@example.com"
                created = await http.post(
                    "/v1/invitations",
                    json={"email": email, "roles": ["customer"], "source": source, "campaign": mix.campaign},
                )
                assert created.status_code == 201, created.text
                ids.append(created.json()["id"])
                emails.append(email)
            accepted = range(mix.accepted)
            opened = range(accepted.stop, accepted.stop + mix.opened)
            revoked = range(opened.stop, opened.stop + mix.revoked)
            for i in accepted:
                await accept_in_the_browser(browser, await mail_link(http, ids[i]), emails[i])
            for i in opened:
                opening = await browserless.get(await mail_link(http, ids[i]), follow_redirects=False)
                assert opening.status_code == 302
            for i in revoked:
                revoking = await http.post(
                    f"/v1/invitations/{ids[i]}/revoke", json={"reason": "duplicate lead"}
                )
                assert revoking.status_code in (200, 202)
            pending[source] = (
                ids[opened.start : revoked.start] + ids[revoked.stop : mix.created - mix.bounced]
            )

        # The workflow records each stage a moment after it, and the SendGrid stand-in reports
        # deliveries a moment after each mail: wait until the mix shows and nothing moves.
        previous: list[dict[str, Any]] = []
        async with asyncio.timeout(60):
            while True:
                groups = (await http.get("/v1/stats/funnel", params={"by": "source"})).json()["groups"]
                by_key = {g["key"]: g for g in groups}
                mixed = all(
                    (by_key.get(s) or {}).get("accepted") == mix.accepted
                    and by_key[s]["revoked"] == mix.revoked
                    and by_key[s]["undeliverable"] == mix.bounced
                    and by_key[s]["opened"] == mix.accepted + mix.opened
                    for s, mix in MIX.items()
                )
                if mixed and groups == previous:
                    break
                previous = groups
                await asyncio.sleep(SETTLE_S)
    return pending


async def sign_in(page: Page, credential: str) -> None:
    await page.fill("#credential", credential)
    await page.click("#signin-submit")


async def test_ops_sign_in_and_read_the_funnel_the_histogram_and_the_pending_list(
    ops_dev: Dev, browser: Browser
):
    pending = await play_the_mix(ops_dev, browser)
    async with ops_dev.client() as http:
        api_groups: dict[str, Any] = {
            g["key"]: g
            for g in (await http.get("/v1/stats/funnel", params={"by": "source"})).json()["groups"]
        }
    token = await access_token(ops_dev, f"ops-{uuid.uuid4().hex[:6]}@example.com", admin=True)
    powerless = await access_token(ops_dev, f"sales-{uuid.uuid4().hex[:6]}@example.com", admin=False)

    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{ops_dev.api}/ops")
    await sign_in(page, "not-a-key-at-all")
    await expect(page.locator("#signin-error")).to_contain_text("not valid")
    await sign_in(page, powerless)
    await expect(page.locator("#signin-error")).to_contain_text("read:invitations")
    await expect(page.locator("#dashboard")).to_be_hidden()

    await sign_in(page, token)
    for source, mix in MIX.items():
        row = page.locator(f'#funnel-table tr[data-group="{source}"]')
        await expect(row).to_be_visible(timeout=20_000)
        cells = await row.locator("td").all_inner_texts()
        # Delivered: every mail SendGrid's stand-in reported (all but the bounced, and a revoked
        # one's only if the report came first), as the API counted them.
        delivered = api_groups[source]["delivered"]
        assert mix.created - mix.bounced - mix.revoked <= delivered <= mix.created - mix.bounced
        stages = [
            mix.created,
            delivered,
            mix.opened + mix.accepted,
            mix.accepted,
            0,
            mix.revoked,
            mix.bounced,
        ]
        rate = f"{mix.accepted / mix.created * 100:.1f} %"
        assert cells[:9] == [source, *map(str, stages), rate]
        assert (cells[9:] == ["\u2013", "\u2013"]) is (mix.accepted == 0)  # en dash: no time to accept
        for stage, count in zip(STAGES, stages, strict=True):
            bar = page.locator(f'#funnel-chart rect[data-group="{source}"][data-stage="{stage}"]')
            await expect(bar).to_have_attribute("data-count", str(count))
    bucket_counts = [
        int(c)
        for c in await page.locator("#histogram rect.bucket").evaluate_all(
            "rs => rs.map(r => r.dataset.count)"
        )
    ]
    assert sum(bucket_counts) == sum(mix.accepted for mix in MIX.values())

    waiting = [i for ids in pending.values() for i in ids]
    rows = page.locator("#pending tbody tr[data-invitation]")
    await expect(rows).to_have_count(len(waiting))
    shown = await rows.evaluate_all("rs => rs.map(r => r.dataset.invitation)")
    assert sorted(shown) == sorted(waiting)
    assert shown[0] == pending["website"][0]  # the oldest first
    first_link = page.locator(f'#pending tr[data-invitation="{shown[0]}"] a.run-link')
    await expect(first_link).to_have_attribute(
        "href", f"{ops_dev.ui}/namespaces/default/workflows/invitation-{shown[0]}"
    )
    opened_row = page.locator(f'#pending tr[data-invitation="{pending["newsletter"][0]}"]')
    await expect(opened_row).to_contain_text("opened")

    await page.locator("#by").select_option("campaign")
    winter = sum(mix.created for mix in MIX.values() if mix.campaign == "winter-launch")
    await expect(page.locator('#funnel-table tr[data-group="winter-launch"] td').nth(1)).to_have_text(
        str(winter)
    )
    await page.locator("#by").select_option("source")
    await expect(page.locator('#funnel-table tr[data-group="website"]')).to_be_visible()

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "ops.png"), full_page=True)
    if os.environ.get("INVITES_UPDATE_SCREENSHOTS"):  # the README's copy, refreshed on request
        await page.screenshot(path=str(SCREENSHOT), full_page=True)

    assert token not in page.url
    await page.reload()  # the tab keeps the session
    await expect(page.locator('#funnel-table tr[data-group="website"]')).to_be_visible()
    await page.click("#signout")
    await expect(page.locator("#signin")).to_be_visible()
    assert await page.evaluate("() => sessionStorage.length") == 0
    await context.close()
    assert token not in ops_dev.log.read_text()  # nor in any part's log
