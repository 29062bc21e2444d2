"""Scratch PostgreSQL databases on the server named by INVITES_TEST_POSTGRES_URL.

The URL names a server and a database to connect to for administration
(e.g. `postgresql+psycopg://postgres@127.0.0.1:5432/test`); each test database is created
under a unique name and dropped again by whoever created it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import URL, text
from sqlalchemy.engine import make_url

from invites.db.engine import create_engine
from invites.db.migrate import upgrade
from tests.support.network import TcpProxy

POSTGRES_URL = os.environ.get("INVITES_TEST_POSTGRES_URL")


def server_url() -> URL:
    if not POSTGRES_URL:
        raise RuntimeError("INVITES_TEST_POSTGRES_URL is not set")
    return make_url(POSTGRES_URL)


async def create_database(prefix: str = "invites_test") -> str:
    """A new, empty database; returns its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}"')
    return name


async def drop_database(name: str) -> None:
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url(name: str) -> str:
    """The URL of database `name` on the test server, password included."""
    return server_url().set(database=name).render_as_string(hide_password=False)


async def _admin(statement: str) -> None:
    # CREATE / DROP DATABASE cannot run inside a transaction.
    admin = create_engine(server_url().render_as_string(hide_password=False))
    try:
        async with admin.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(statement))
    finally:
        await admin.dispose()


@dataclass
class ProxiedDatabase:
    url: str  # through the proxy: what the API and the worker are given
    direct_url: str  # straight to PostgreSQL: what the test reads with
    proxy: TcpProxy


@contextlib.asynccontextmanager
async def proxied_database() -> AsyncIterator[ProxiedDatabase]:
    """A dedicated, migrated database, reached through a proxy the test can cut; dropped after."""
    name = await create_database("invites_rel")
    direct = make_url(database_url(name))
    proxy = TcpProxy(direct.host or "127.0.0.1", direct.port or 5432)
    await proxy.up()
    try:
        await upgrade(direct.render_as_string(hide_password=False))
        yield ProxiedDatabase(
            direct.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
            direct.render_as_string(hide_password=False),
            proxy,
        )
    finally:
        await proxy.down()
        await drop_database(name)
