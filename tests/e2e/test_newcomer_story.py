"""Funnel form → mail in the outbox → link → sign up / sign in / "Google" → customer space.

Screenshots of each story land in test-artifacts/e2e/.
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import Browser, Page, expect

from tests.support.invites_dev import ARTIFACTS, Dev, eventually

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery"


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def invite_through_the_funnel(page: Page, dev: Dev, email: str, company: str) -> str:
    await page.goto(f"{dev.api}/dev")
    await page.fill("#email", email)
    await page.fill("#company", company)
    await page.click("#submit")
    await expect(page.locator("#to-outbox")).to_be_visible()
    invitation_id = re.search(r"inv_[0-9A-Z]{26}", await page.locator("#result").inner_text()).group(0)
    await page.click("#to-outbox")
    link = page.locator(f'.mail[data-invitation="{invitation_id}"] .invitation-link')
    for _ in range(40):  # the worker sends the mail a moment after the create
        if await link.count():
            break
        await page.wait_for_timeout(250)
        await page.reload()
    await expect(link).to_be_visible()
    return invitation_id


async def status_of(dev: Dev, invitation_id: str) -> str:
    async with dev.client() as http:
        return (await http.get(f"/v1/invitations/{invitation_id}")).json()["status"]


async def test_a_new_user_signs_up_from_the_invitation(invites_dev: Dev, browser: Browser):
    page = await browser.new_page()
    email = f"ada-{uuid.uuid4().hex[:6]}@example.com"
    invitation_id = await invite_through_the_funnel(page, invites_dev, email, "Analytical Engines")
    await shot(page, "a1-outbox")
    await page.locator(f'.mail[data-invitation="{invitation_id}"] .invitation-link').click()
    await expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    await expect(page.locator('form[action="/u/signup"] input[name="email"]')).to_have_value(email)
    await shot(page, "a2-sign-up")
    await page.fill('form[action="/u/signup"] input[name="password"]', PASSWORD)
    await page.click('form[action="/u/signup"] button[type="submit"]')
    await expect(page.locator("#me-email")).to_have_text(email)
    await expect(page.locator("#roles .role")).to_have_text(["customer"])
    await expect(page.locator(".funnel-data")).to_contain_text("Analytical Engines")
    await shot(page, "a3-customer-space")
    assert await status_of(invites_dev, invitation_id) == "accepted"
    await page.goto(f"{invites_dev.ui}/namespaces/default/workflows/invitation-{invitation_id}")
    await expect(page.get_by_text("Completed").first).to_be_visible(timeout=20_000)
    await shot(page, "a4-temporal-ui")
    await page.close()


async def test_an_existing_user_signs_in_to_accept(invites_dev: Dev, browser: Browser):
    page = await browser.new_page()
    email = f"bob-{uuid.uuid4().hex[:6]}@example.com"
    # Bob has an account already (signed up without any invitation: never blocked).
    await page.goto(f"{invites_dev.api}/app")
    await page.click("text=Sign in")
    await page.click("text=Don't have an account? Sign up")
    await page.fill('form[action="/u/signup"] input[name="email"] >> visible=true', email)
    await page.fill('form[action="/u/signup"] input[name="password"] >> visible=true', PASSWORD)
    await page.click('form[action="/u/signup"] button[type="submit"] >> visible=true')
    await expect(page.locator("#me-email")).to_have_text(email)
    await expect(page.locator("#data")).to_contain_text("No invitation is linked")
    await page.click("text=Sign out")

    invitation_id = await invite_through_the_funnel(page, invites_dev, email, "Bob's Bakery")
    await page.locator(f'.mail[data-invitation="{invitation_id}"] .invitation-link').click()
    await expect(page.get_by_role("heading", name="Welcome")).to_be_visible()  # screen_hint=login
    await shot(page, "b1-sign-in")
    await page.fill('form[action="/u/login"] input[name="password"] >> visible=true', PASSWORD)
    await page.click('form[action="/u/login"] button[type="submit"] >> visible=true')
    await expect(page.locator("#roles .role")).to_have_text(["customer"])
    await expect(page.locator(".funnel-data")).to_contain_text("Bob's Bakery")
    await shot(page, "b2-customer-space")
    assert await status_of(invites_dev, invitation_id) == "accepted"
    await page.close()


async def test_google_with_another_address_is_explained_and_the_invitation_waits(
    invites_dev: Dev, browser: Browser
):
    page = await browser.new_page()
    email = f"carol-{uuid.uuid4().hex[:6]}@example.com"
    invitation_id = await invite_through_the_funnel(page, invites_dev, email, "Carol & Co")
    await page.locator(f'.mail[data-invitation="{invitation_id}"] .invitation-link').click()
    await page.click("text=Continue with Google")
    google = page.locator('form[action="/u/social"]:has(input[value="google-oauth2"])')
    await google.locator('input[name="email"]').fill(f"carol.personal.{uuid.uuid4().hex[:4]}@gmail.com")
    await shot(page, "c1-google")
    await google.locator('button[type="submit"]').click()
    await expect(page.locator("#invitation-error")).to_contain_text("different email address")
    await expect(page.locator("#roles")).to_contain_text("No roles")
    await shot(page, "c2-customer-space-mismatch")

    async def still_pending() -> bool:
        return await status_of(invites_dev, invitation_id) == "pending"

    await eventually(still_pending)
    await page.close()
