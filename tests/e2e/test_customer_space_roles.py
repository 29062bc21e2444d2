"""The customer space in a browser: an existing account invited twice holds both invitations'
roles, and the page writes dates as the other dev pages do (never a raw ISO timestamp)."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.pages import invite_through_the_funnel, shot, sign_in, sign_up_from_the_app
from tests.support.invites_dev import Dev

pytestmark = pytest.mark.e2e
PAGE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$")


async def accept_by_signing_in(page: Page, invitation_id: str) -> None:
    await page.locator(f'.mail[data-invitation="{invitation_id}"] .invitation-link').click()
    await expect(page.get_by_role("heading", name="Welcome")).to_be_visible()  # the account exists
    await sign_in(page)


async def test_an_existing_account_invited_twice_sees_the_roles_of_both(invites_dev: Dev, browser: Browser):
    page = await browser.new_page()
    email = f"dora-{uuid.uuid4().hex[:6]}@example.com"
    await sign_up_from_the_app(page, invites_dev, email)  # Dora signs up on her own first: no roles yet
    await expect(page.locator("#roles")).to_contain_text("No roles")
    await page.click("text=Sign out")

    first = await invite_through_the_funnel(page, invites_dev, email, "Dora's Deli", ["customer"])
    await accept_by_signing_in(page, first)
    await expect(page.locator("#roles .role")).to_have_text(["customer"])
    await page.click("text=Sign out")

    second = await invite_through_the_funnel(page, invites_dev, email, "Dora's Diner", ["member"])
    await accept_by_signing_in(page, second)
    # This login's token claims `member` only; the account holds both invitations' roles.
    await expect(page.locator("#roles .role")).to_have_text(["customer", "member"])
    await expect(page.locator(".funnel-data")).to_have_count(2)
    await expect(page.locator("#data")).to_contain_text("Dora's Deli")
    await expect(page.locator("#data")).to_contain_text("Dora's Diner")

    shown = await page.locator("#data .accepted-at").all_inner_texts()
    assert len(shown) == 2 and all(PAGE_TIME.match(text) for text in shown), shown
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", await page.locator("main").inner_text())
    await shot(page, "d1-customer-space-invited-twice")
    await page.close()
