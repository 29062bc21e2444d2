"""Store tests run on SQLite, and on PostgreSQL too when INVITES_TEST_POSTGRES_URL is set.

The PostgreSQL URL names a server and a database to connect to for administration
(e.g. `postgresql+psycopg://postgres@127.0.0.1:5432/test`); every database the tests use
is created under a unique name and dropped at the end of the session.
"""

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from invites.db import Store, create_engine, upgrade
from invites.db.tables import Base

POSTGRES_URL = os.environ.get("INVITES_TEST_POSTGRES_URL")

BACKENDS = [pytest.param("sqlite", id="sqlite")]
if POSTGRES_URL:
    BACKENDS.append(pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres))


class Databases:
    """Makes empty databases with unique names, and drops them when the session ends."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._created: list[str] = []

    async def new(self, backend: str) -> str:
        name = f"invites_test_{uuid.uuid4().hex[:12]}"
        if backend == "sqlite":
            return f"sqlite+aiosqlite:///{self._folder / name}.db"
        await _postgres_admin(f'CREATE DATABASE "{name}"')
        self._created.append(name)
        return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)

    async def drop_all(self) -> None:
        for name in self._created:
            await _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _postgres_admin(statement: str) -> None:
    # CREATE / DROP DATABASE cannot run inside a transaction.
    admin = create_engine(POSTGRES_URL or "")
    try:
        async with admin.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(statement))
    finally:
        await admin.dispose()


@pytest.fixture(scope="session")
async def databases(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Databases]:
    made = Databases(tmp_path_factory.mktemp("db"))
    yield made
    await made.drop_all()


@pytest.fixture(scope="session", params=BACKENDS)
async def engine(request: pytest.FixtureRequest, databases: Databases) -> AsyncIterator[AsyncEngine]:
    """An engine on a database migrated with `upgrade`, one per backend for the session."""
    url = await databases.new(request.param)
    await upgrade(url)
    made = create_engine(url)
    yield made
    await made.dispose()


@pytest.fixture
async def store(engine: AsyncEngine) -> AsyncIterator[Store]:
    """A store on empty tables."""
    async with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            await connection.execute(table.delete())
    made = Store(engine)
    yield made
    made.close()


@pytest.fixture(params=BACKENDS)
async def fresh_url(request: pytest.FixtureRequest, databases: Databases) -> str:
    """The URL of a new, empty database."""
    return await databases.new(request.param)
