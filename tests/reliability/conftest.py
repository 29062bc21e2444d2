"""A PostgreSQL database behind a TCP proxy the test can cut, for the outage tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support import postgres


@pytest.fixture
async def proxied_postgres() -> AsyncIterator[postgres.ProxiedDatabase]:
    if not postgres.POSTGRES_URL:
        pytest.skip("INVITES_TEST_POSTGRES_URL is not set (see tests/support/postgres.py)")
    async with postgres.proxied_database() as database:
        yield database
