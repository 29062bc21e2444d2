"""Funnel form → mail in the outbox → link → sign up / sign in / "Google" → customer space.

Screenshots of each story land in test-artifacts/e2e/.
"""

from __future__ import annotations

import uuid

import pytest
from playwright.async_api import Browser, expect

from tests.e2e.pages import (
    PASSWORD,
    invite_through_the_funnel,
    shot,
    sign_in,
    sign_up_from_the_app,
    status_of,
)
from tests.support.invites_dev import Dev, eventually

pytestmark = pytest.mark.e2e


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
    await sign_up_from_the_app(page, invites_dev, email)
    await expect(page.locator("#data")).to_contain_text("No invitation is linked")
    await page.click("text=Sign out")

    invitation_id = await invite_through_the_funnel(page, invites_dev, email, "Bob's Bakery")
    await page.locator(f'.mail[data-invitation="{invitation_id}"] .invitation-link').click()
    await expect(page.get_by_role("heading", name="Welcome")).to_be_visible()  # screen_hint=login
    await shot(page, "b1-sign-in")
    await sign_in(page)
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
