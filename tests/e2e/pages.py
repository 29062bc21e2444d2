"""What the browser tests do on the product's pages, written once: the funnel form, the outbox,
the customer space's sign-up and the login page."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.support.invites_dev import ARTIFACTS, Dev

PASSWORD = "correct horse battery"
# The worker sends the mail a moment after the create; the outbox shows it by itself.
MAIL_TIMEOUT_MS = 15_000


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def invite_through_the_funnel(
    page: Page, dev: Dev, email: str, company: str, roles: list[str] | None = None
) -> str:
    """Submit the `/dev` funnel form (granting `roles`, else the form's default); the invitation's
    id once its mail is in the outbox, which the page then shows."""
    await page.goto(f"{dev.api}/dev")
    await page.fill("#email", email)
    await page.fill("#company", company)
    if roles is not None:
        await page.select_option("#roles", roles)
    await page.click("#submit")
    await expect(page.locator("#to-outbox")).to_be_visible()
    invitation_id = re.search(r"inv_[0-9A-Z]{26}", await page.locator("#result").inner_text()).group(0)
    await page.click("#to-outbox")
    link = page.locator(f'.mail[data-invitation="{invitation_id}"] .invitation-link')
    await expect(link).to_be_visible(timeout=MAIL_TIMEOUT_MS)
    return invitation_id


async def sign_up_from_the_app(page: Page, dev: Dev, email: str, password: str = PASSWORD) -> None:
    """A person signs up on their own, from the customer space, without any invitation."""
    await page.goto(f"{dev.api}/app")
    await page.click("text=Sign in")
    await page.click("text=Don't have an account? Sign up")
    await page.fill('form[action="/u/signup"] input[name="email"] >> visible=true', email)
    await page.fill('form[action="/u/signup"] input[name="password"] >> visible=true', password)
    await page.click('form[action="/u/signup"] button[type="submit"] >> visible=true')
    await expect(page.locator("#me-email")).to_have_text(email)


async def sign_in(page: Page, email: str | None = None, password: str = PASSWORD) -> None:
    """Complete the login page (the address is filled in already when `email` is None)."""
    if email is not None:
        await page.fill('form[action="/u/login"] input[name="email"] >> visible=true', email)
    await page.fill('form[action="/u/login"] input[name="password"] >> visible=true', password)
    await page.click('form[action="/u/login"] button[type="submit"] >> visible=true')


async def status_of(dev: Dev, invitation_id: str) -> str:
    async with dev.client() as http:
        return (await http.get(f"/v1/invitations/{invitation_id}")).json()["status"]
