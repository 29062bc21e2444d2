import asyncio
import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from invites.db.engine import create_engine
from invites.db.migrate import config, upgrade, upgrade_sync
from invites.db.tables import Base

TABLES = {"invitations", "account_links", "outbox", "webhook_receipts", "funnel", "alembic_version"}


async def schema_of(url: str) -> tuple[set[str], str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
            version = await connection.execute(text("SELECT version_num FROM alembic_version"))
            return tables, version.scalar_one()
    finally:
        await engine.dispose()


def head() -> str:
    return ScriptDirectory.from_config(config()).get_current_head() or ""


async def test_upgrade_twice_is_a_no_op(fresh_url: str):
    await upgrade(fresh_url)
    await upgrade(fresh_url)

    tables, version = await schema_of(fresh_url)
    assert tables == TABLES
    assert version == head()


async def test_concurrent_upgrades_of_a_new_database_take_turns(fresh_url: str):
    await asyncio.gather(*(upgrade(fresh_url) for _ in range(3)))

    assert await schema_of(fresh_url) == (TABLES, head())


async def test_upgrade_sync_for_synchronous_callers(fresh_url: str):
    await asyncio.to_thread(upgrade_sync, fresh_url)

    assert await schema_of(fresh_url) == (TABLES, head())


async def test_migrations_build_exactly_the_declared_tables(fresh_url: str):
    await upgrade(fresh_url)
    engine = create_engine(fresh_url)

    def differences(connection: Connection) -> list:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()


async def test_sqlite_engine_makes_its_folder_and_sets_its_pragmas(tmp_path: Path):
    path = tmp_path / "state" / "nested" / "invites.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        async with engine.connect() as connection:
            pragmas = {
                name: (await connection.execute(text(f"PRAGMA {name}"))).scalar_one()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            }
    finally:
        await engine.dispose()

    assert path.exists()
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 5000}
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("wal",)
