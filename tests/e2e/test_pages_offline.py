"""The pages a newcomer sees first, in Chromium with every host but 127.0.0.1 unreachable:
`/docs` renders Swagger UI from the API alone; the outbox shows a new mail by itself and the
link inside its preview opens in the window."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, expect

from tests.support.invites_dev import Dev

pytestmark = pytest.mark.e2e


@pytest.fixture
async def offline(browser: Browser) -> AsyncIterator[tuple[BrowserContext, list[str]]]:
    """A browser context that can reach 127.0.0.1 only; the list holds every URL it refused."""
    context = await browser.new_context()
    refused: list[str] = []

    async def local_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            refused.append(route.request.url)
            await route.abort("internetdisconnected")

    await context.route("**/*", local_only)
    yield context, refused
    await context.close()


async def test_the_api_docs_render_with_no_network(
    invites_dev: Dev, offline: tuple[BrowserContext, list[str]]
):
    context, refused = offline
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    await page.goto(f"{invites_dev.api}/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("invites")
    await expect(page.locator(".opblock-summary-path", has_text="/v1/invitations").first).to_be_visible()
    assert refused == []
    assert problems == []  # no asset missing, nothing refused by the page's CSP


async def test_the_outbox_shows_a_new_mail_by_itself_and_its_link_opens_in_the_window(
    invites_dev: Dev, offline: tuple[BrowserContext, list[str]]
):
    context, refused = offline
    page: Page = await context.new_page()
    await page.goto(f"{invites_dev.api}/dev/outbox")
    async with invites_dev.client() as http:
        created = await http.post(
            "/v1/invitations",
            json={"email": f"eve-{uuid.uuid4().hex[:6]}@example.com", "roles": ["customer"]},
        )
    invitation_id = created.json()["id"]
    mail = page.locator(f'.mail[data-invitation="{invitation_id}"]')
    await expect(mail).to_be_visible(timeout=20_000)  # no reload: the page polls its JSON
    await expect(page.locator("#no-mail")).to_have_count(0)

    preview = mail.frame_locator("iframe")
    await preview.locator("a[href*='/i/']").first.click()
    await expect(page).to_have_url(re.compile(re.escape(f"{invites_dev.auth0}/authorize")))
    await expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    assert refused == []
