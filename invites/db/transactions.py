"""Where the `Store`'s transactions run.

Each `Store` method is a synchronous function of a `Session`, run whole in one transaction:

- **PostgreSQL** (psycopg's async driver): in the event loop, through `AsyncSession.run_sync`
  (a greenlet; no thread).
- **A SQLite file**: in a worker thread, on a synchronous engine over the standard `sqlite3`.
  aiosqlite hands every cursor call to its own thread and back (BEGIN, execute, fetch, close,
  COMMIT, the pool's reset: nine hand-offs for one insert, ~1.7 ms of CPU); one hand-off per
  transaction costs less than half (BENCHMARKS.md). Writes go to one thread, so they queue in order
  for SQLite's single write lock instead of racing for it (and timing out under a burst); reads
  run on a few threads of their own (WAL lets them read while one writes).

A caller cancelled while its transaction still waits for a thread drops it (it never runs);
once running, it commits or rolls back whole, as it would had the caller waited. Every write
here is keyed, so a retry is safe either way.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy import Engine
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session, sessionmaker

from invites.db.engine import is_sqlite_file, prepare_sqlite, session_factory, writer

P = ParamSpec("P")
T = TypeVar("T")
Work = Callable[Concatenate[Session, P], T]

# Threads that read a SQLite file at once, per process (writes have one thread).
SQLITE_READERS = 4


class Transactions(Protocol):
    async def write(self, work: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T: ...

    async def read(self, work: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T: ...

    def close(self) -> None: ...


def transactions_for(engine: AsyncEngine) -> Transactions:
    if is_sqlite_file(engine.url):
        return InThreads(engine)
    return InEventLoop(engine)


class InEventLoop:
    """Transactions on the async engine itself (PostgreSQL; SQLite in memory)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._reads = session_factory(engine)
        self._writes = session_factory(writer(engine))
        # SQLite has one write lock and does not queue waiters fairly: take turns here first.
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

    def close(self) -> None:
        """The engine belongs to the caller, who disposes of it."""


class InThreads:
    """Transactions on a synchronous engine over the same SQLite file, in worker threads."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = _sync_twin(engine)
        self._reads = sessionmaker(self._engine, expire_on_commit=False)
        self._writes = sessionmaker(writer(self._engine), expire_on_commit=False)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="invites-db-write")
        self._readers = ThreadPoolExecutor(SQLITE_READERS, thread_name_prefix="invites-db-read")

    async def write(self, work: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run(self._writer, self._in_write, _bound(work, *args, **kwargs))

    async def read(self, work: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run(self._readers, self._in_read, _bound(work, *args, **kwargs))

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self._engine.dispose()

    def _in_write(self, work: Callable[[Session], T]) -> T:
        with self._writes.begin() as session:
            return work(session)

    def _in_read(self, work: Callable[[Session], T]) -> T:
        with self._reads() as session:
            return work(session)

    @staticmethod
    async def _run(
        pool: ThreadPoolExecutor, run: Callable[[Callable[[Session], T]], T], work: Callable[[Session], T]
    ) -> T:
        context = contextvars.copy_context()  # log context follows the work into the thread
        return await asyncio.get_running_loop().run_in_executor(pool, context.run, run, work)


def _bound(work: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> Callable[[Session], T]:
    return lambda session: work(session, *args, **kwargs)


def _sync_twin(engine: AsyncEngine) -> Engine:
    """A synchronous engine on the async engine's SQLite file, with the same connection setup.

    Its connections move between the threads (one at a time), hence `check_same_thread=False`.
    """
    url = engine.url.set(drivername="sqlite+pysqlite")
    twin = create_sync_engine(url, connect_args={"check_same_thread": False})
    prepare_sqlite(twin)
    return twin
