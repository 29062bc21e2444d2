"""The customer space in a browser: an existing account invited twice holds both invitations'
roles, and the page writes dates as the other dev pages do (never a raw ISO timestamp)."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import Browser, Page, expect

from tests.support.invites_dev import ARTIFACTS, Dev

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery"
PAGE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$")
MAIL_TIMEOUT_MS = 15_000


async def invite(page: Page, dev: Dev, email: str, company: str, roles: list[str]) -> str:
    """Submit the funnel form granting `roles`; return the invitation's id once its mail is in
    the outbox (the page shows new mail by itself)."""
    await page.goto(f"{dev.api}/dev")
    await page.fill("#email", email)
    await page.fill("#company", company)
    await page.select_option("#roles", roles)
    await page.click("#submit")
    await expect(page.locator("#to-outbox")).to_be_visible()
    invitation_id = re.search(r"inv_[0-9A-Z]{26}", await page.locator("#result").inner_text()).group(0)
    await page.click("#to-outbox")
    link = page.locator(f'.mail[data-invitation="{invitation_id}"] .invitation-link')
    await expect(link).to_be_visible(timeout=MAIL_TIMEOUT_MS)
    return invitation_id


async def accept_by_signing_in(page: Page, invitation_id: str) -> None:
    await page.locator(f'.mail[data-invitation="{invitation_id}"] .invitation-link').click()
    await expect(page.get_by_role("heading", name="Welcome")).to_be_visible()  # the account exists
    await page.fill('form[action="/u/login"] input[name="password"] >> visible=true', PASSWORD)
    await page.click('form[action="/u/login"] button[type="submit"] >> visible=true')


async def test_an_existing_account_invited_twice_sees_the_roles_of_both(invites_dev: Dev, browser: Browser):
    page = await browser.new_page()
    email = f"dora-{uuid.uuid4().hex[:6]}@example.com"
    await page.goto(f"{invites_dev.api}/app")  # Dora signs up on her own first: no roles yet
    await page.click("text=Sign in")
    await page.click("text=Don't have an account? Sign up")
    await page.fill('form[action="/u/signup"] input[name="email"] >> visible=true', email)
    await page.fill('form[action="/u/signup"] input[name="password"] >> visible=true', PASSWORD)
    await page.click('form[action="/u/signup"] button[type="submit"] >> visible=true')
    await expect(page.locator("#me-email")).to_have_text(email)
    await expect(page.locator("#roles")).to_contain_text("No roles")
    await page.click("text=Sign out")

    first = await invite(page, invites_dev, email, "Dora's Deli", ["customer"])
    await accept_by_signing_in(page, first)
    await expect(page.locator("#roles .role")).to_have_text(["customer"])
    await page.click("text=Sign out")

    second = await invite(page, invites_dev, email, "Dora's Diner", ["member"])
    await accept_by_signing_in(page, second)
    # This login's token claims `member` only; the account holds both invitations' roles.
    await expect(page.locator("#roles .role")).to_have_text(["customer", "member"])
    await expect(page.locator(".funnel-data")).to_have_count(2)
    await expect(page.locator("#data")).to_contain_text("Dora's Deli")
    await expect(page.locator("#data")).to_contain_text("Dora's Diner")

    shown = await page.locator("#data .accepted-at").all_inner_texts()
    assert len(shown) == 2 and all(PAGE_TIME.match(text) for text in shown), shown
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", await page.locator("main").inner_text())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "d1-customer-space-invited-twice.png"), full_page=True)
    await page.close()
