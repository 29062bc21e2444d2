"""A PostgreSQL database behind a TCP proxy the test can cut, for the outage tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support import postgres
from tests.support.api import Api, api_for
from tests.support.auth0 import account as new_account
from tests.support.webhooks import Delivery

# tests/reliability/test_redeem_answer.py imports these three from here.
__all__ = ["account", "api_for", "delivery"]


def account(api: Api, email: str) -> dict[str, Any]:
    return new_account(api.stack.auth0, email, email_verified=True)


def delivery(api: Api, token: str, user: dict[str, Any]) -> Delivery:
    return api.delivery(token, user)


@pytest.fixture
async def proxied_postgres() -> AsyncIterator[postgres.ProxiedDatabase]:
    if not postgres.POSTGRES_URL:
        pytest.skip("INVITES_TEST_POSTGRES_URL is not set (see tests/support/postgres.py)")
    async with postgres.proxied_database() as database:
        yield database
