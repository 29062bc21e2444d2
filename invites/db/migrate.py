"""Bring a database to the latest schema with Alembic; no alembic.ini needed.

From a shell: `python -m invites.db [URL]` (default: `INVITES_DATABASE_URL`). To write a new
revision, point `alembic.command.revision(config(url), "message", autogenerate=True)` at a
database that is at head.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from invites.db.engine import create_engine, writer

MIGRATIONS = Path(__file__).with_name("migrations")
# Key of the PostgreSQL advisory lock that lets one process at a time migrate
# (every API and worker replica runs `upgrade` at start). "invites" in ASCII.
PG_MIGRATION_LOCK = 0x696E7669746573


def config(url: str | None = None) -> Config:
    """The Alembic configuration of this package; `url` is used when no connection is given."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def upgrade(url: str | AsyncEngine) -> None:
    """Migrate the database at `url` (or behind an engine) to head; a no-op when it is there.

    Safe to run from several processes at once: they take turns.
    """
    engine = create_engine(url) if isinstance(url, str) else url
    try:
        async with writer(engine).connect() as connection:
            await connection.run_sync(_upgrade_to_head)
            await connection.commit()
    finally:
        if isinstance(url, str):
            await engine.dispose()


def upgrade_sync(url: str) -> None:
    """`upgrade` for synchronous callers (not from inside a running event loop)."""
    asyncio.run(upgrade(url))


def _upgrade_to_head(connection: Connection) -> None:
    # The first statement opens the transaction the whole migration runs in: on SQLite
    # `writer` makes it BEGIN IMMEDIATE; on PostgreSQL the lock is held until commit.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
    else:
        connection.execute(text("SELECT 1"))
    cfg = config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")
