"""Accounts in the Auth0 fake as the Action describes them, and counting its role assignments."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from sandbox.auth0_api import DEV_CLIENT_ID, DEV_CLIENT_SECRET, Auth0Fake

# Route keys of the fake's call log (`Auth0Fake.faults`).
ASSIGN_ROLES = "POST /api/v2/users/{id}/roles"
LOOKUP = "GET /api/v2/users"  # the look-ups' batched user search (activities/lookups.py)


def user_payload(auth0: Auth0Fake, email: str, **extra: Any) -> dict[str, Any]:
    """The Action's `user` block for an account in the fake tenant."""
    user = auth0.user(auth0.tenant.users_by_email(email.lower())[0]["user_id"])
    return {
        "user_id": user["user_id"],
        "email": user["email"],
        "email_verified": user.get("email_verified", False),
        **extra,
    }


def account(auth0: Auth0Fake, email: str, **extra: Any) -> dict[str, Any]:
    """A new database account for `email` (someone signing up from the link), as a `user` block."""
    auth0.create_user(email)
    return user_payload(auth0, email, **extra)


async def assignments_answered(auth0: Auth0Fake, requests: int = 1, timeout: float = 20) -> None:
    """Wait until the fake has answered `requests` role assignments 204 (parked ones included)."""
    async with asyncio.timeout(timeout):
        while auth0.faults.count(ASSIGN_ROLES, status=204) < requests:
            await asyncio.sleep(0.05)


async def management_headers(http: httpx.AsyncClient) -> dict[str, str]:
    """The Authorization header for the sandbox's Management API (`http` on the sandbox's base
    URL), from a client-credentials token of the dev client."""
    client = {"client_id": DEV_CLIENT_ID, "client_secret": DEV_CLIENT_SECRET}
    token = await http.post("/oauth/token", data={"grant_type": "client_credentials", **client})
    return {"Authorization": f"Bearer {token.json()['access_token']}"}
