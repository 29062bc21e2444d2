"""Async engines for SQLite (embedded default) and PostgreSQL (production), and the SQLite
connection setup (WAL, a busy timeout, foreign keys, `BEGIN IMMEDIATE` for writes) that the
store's synchronous engine shares (`invites.db.transactions`)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 5_000
E = TypeVar("E", Engine, AsyncEngine)
# Execution option marking a transaction that will write (see `writer`).
_WRITES = "invites_writes"

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
}


def create_engine(url: str | URL) -> AsyncEngine:
    """An async engine for `url`; `sqlite:` and `postgresql:` get their async drivers.

    A SQLite file gets its folder created and WAL mode; every SQLite connection gets
    foreign keys and a busy timeout.
    """
    url = make_url(url)
    url = url.set(drivername=_DRIVERS.get(url.drivername, url.drivername))
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    return _create_async_engine(url, pool_pre_ping=True)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def writer(engine: E) -> E:
    """The same engine, for transactions that write.

    On SQLite they start with `BEGIN IMMEDIATE`, taking the write lock up front: a
    transaction that read first and wrote later could fail at once with "database is
    locked" instead of waiting its turn. Elsewhere it changes nothing.
    """
    return engine.execution_options(**{_WRITES: True})


def is_sqlite_file(url: URL) -> bool:
    """A SQLite database in a file (not in memory, not a `file:` URI)."""
    database = url.database or ""
    elsewhere = database in ("", ":memory:") or bool(url.query.get("uri"))
    return url.get_backend_name() == "sqlite" and not elsewhere


def prepare_sqlite(engine: Engine) -> None:
    """Every connection gets foreign keys and a busy timeout; BEGIN is emitted by SQLAlchemy."""
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)


def _sqlite_engine(url: URL) -> AsyncEngine:
    if is_sqlite_file(url):
        path = Path(url.database or "").expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        _enable_wal(path)
    engine = _create_async_engine(url)
    prepare_sqlite(engine.sync_engine)
    return engine


def _enable_wal(path: Path) -> None:
    # WAL lets readers and one writer work at once. The mode is kept in the file, so it is
    # set once here: switching it from several new connections at once fails as "locked".
    with closing(sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)) as db:
        db.execute("PRAGMA journal_mode=WAL")


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (see _sqlite_on_begin): the driver's own
    # transaction handling skips BEGIN before SELECTs and DDL.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    writes = connection.get_execution_options().get(_WRITES, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")
