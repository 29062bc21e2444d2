"""Where the `Store`'s transactions run.

Each `Store` method is a synchronous function of a `Session`, run whole in one transaction on the
async engine through `AsyncSession.run_sync` (a greenlet; no thread). On SQLite, writes take
turns on an asyncio lock before they take SQLite's single write lock (`BEGIN IMMEDIATE`):
SQLite does not queue its waiters fairly, and a burst of writers racing for it could time out.

A caller cancelled while its transaction still waits for its turn drops it (it never runs);
once running, it commits or rolls back whole. Every write here is keyed, so a retry is safe
either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session

from invites.db.engine import session_factory, writer

P = ParamSpec("P")
T = TypeVar("T")
Work = Callable[Concatenate[Session, P], T]


class Transactions:
    def __init__(self, engine: AsyncEngine) -> None:
        self._reads = session_factory(engine)
        self._writes = session_factory(writer(engine))
        self._write_turn = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    async def write(self, work: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._write_turn is None:
            return await self._write(work, *args, **kwargs)
        async with self._write_turn:
            return await self._write(work, *args, **kwargs)

    async def _write(self, work: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        async with self._writes.begin() as session:
            return await session.run_sync(work, *args, **kwargs)

    async def read(self, work: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        async with self._reads() as session:
            return await session.run_sync(work, *args, **kwargs)
