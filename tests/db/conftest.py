"""Store tests run on SQLite, and on PostgreSQL too when INVITES_TEST_POSTGRES_URL is set
(see tests/support/postgres.py); every database they use is made for the session and dropped
at its end."""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from invites.db.engine import create_engine
from invites.db.migrate import upgrade
from invites.db.store import Store
from invites.db.tables import Base
from tests.support import postgres

BACKENDS = [pytest.param("sqlite", id="sqlite")]
if postgres.POSTGRES_URL:
    BACKENDS.append(pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres))


class Databases:
    """Makes empty databases with unique names, and drops them when the session ends."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._created: list[str] = []

    async def new(self, backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite+aiosqlite:///{self._folder / uuid.uuid4().hex[:12]}.db"
        name = await postgres.create_database()
        self._created.append(name)
        return postgres.database_url(name)

    async def drop_all(self) -> None:
        for name in self._created:
            await postgres.drop_database(name)


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
