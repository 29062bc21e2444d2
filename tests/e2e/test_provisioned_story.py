"""A provisioned invitation in a real browser: the account exists before any login, the mail
carries an Auth0 password-change ticket (no /i/ link), the person sets a password on the ticket
page, signs in and lands in the customer space with the roles and the funnel data.

Screenshots land in test-artifacts/e2e/.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.e2e.pages import shot, sign_in, status_of
from tests.support.auth0 import management_headers
from tests.support.invites_dev import Dev, eventually

pytestmark = pytest.mark.e2e
PASSWORD = "my own new password"


async def sandbox_users(dev: Dev, email: str) -> list[dict[str, Any]]:
    """The sandbox tenant's accounts for `email`, read through its Management API."""
    async with httpx.AsyncClient(base_url=dev.auth0, timeout=15) as http:
        users = await http.get(
            "/api/v2/users-by-email", params={"email": email}, headers=await management_headers(http)
        )
    return users.json()


async def mailed_link(dev: Dev, invitation_id: str) -> str:
    link = ""

    async def mailed() -> bool:
        nonlocal link
        async with dev.client() as http:
            mails = (await http.get("/dev/api/outbox")).json()
        link = next((m["link"] for m in mails if m["invitation_id"] == invitation_id), "")
        return bool(link)

    await eventually(mailed)
    return link


async def test_a_provisioned_invitation_sets_a_password_and_lands_in_the_customer_space(
    invites_dev: Dev, browser: Browser
):
    email = f"pia-{uuid.uuid4().hex[:6]}@example.com"
    async with invites_dev.client() as http:
        created = await http.post(
            "/v1/invitations",
            json={
                "email": email,
                "roles": ["customer"],
                "data": {"company": "Provisioned Partners"},
                "mode": "provisioned",
            },
        )
    assert created.status_code == 201, created.text
    invitation = created.json()
    assert invitation["mode"] == "provisioned"

    link = await mailed_link(invites_dev, invitation["id"])
    assert "/u/reset-password?ticket=" in link and "/i/" not in link
    [account] = await sandbox_users(invites_dev, email)  # made ahead, before any login
    assert account["app_metadata"]["invites"] == {"status": "invited", "invitation_id": invitation["id"]}
    assert account["logins_count"] == 0

    page = await browser.new_page()
    await page.goto(link)
    await expect(page.get_by_role("heading", name="Change Your Password")).to_be_visible()
    await shot(page, "p1-ticket-page")
    await page.fill('input[name="password"]', PASSWORD)
    await page.fill('input[name="confirm"]', PASSWORD)
    await page.click('button[type="submit"]')

    # The ticket's result_url is the customer space; signing in there runs the Action.
    await page.click("text=Sign in")
    await sign_in(page, email, PASSWORD)
    await expect(page.locator("#me-email")).to_have_text(email)
    await expect(page.locator("#roles .role")).to_have_text(["customer"])
    await expect(page.locator(".funnel-data")).to_contain_text("Provisioned Partners")
    await shot(page, "p2-customer-space")

    assert await status_of(invites_dev, invitation["id"]) == "accepted"
    [account] = await sandbox_users(invites_dev, email)
    assert account["app_metadata"]["invites"]["status"] == "active"
    assert account["email_verified"] is True  # the ticket marked it

    await page.goto(link)  # a used ticket is refused
    await expect(page.get_by_role("heading", name="Link Already Used")).to_be_visible()
    await page.close()
