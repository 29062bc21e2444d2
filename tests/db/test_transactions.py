"""Where the store's transactions run: threads on a SQLite file, the event loop elsewhere."""

import asyncio
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from invites.db.engine import create_engine
from invites.db.migrate import upgrade
from invites.db.store import Store
from invites.db.transactions import InEventLoop, InThreads, transactions_for
from tests.support.records import invitation


def _db_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("invites-db-")}


def test_a_sqlite_file_runs_in_threads_memory_and_postgresql_in_the_loop(tmp_path: Path):
    assert isinstance(transactions_for(create_engine(f"sqlite:///{tmp_path}/a.db")), InThreads)
    assert isinstance(transactions_for(create_engine("sqlite+aiosqlite://")), InEventLoop)
    assert isinstance(transactions_for(create_engine("postgresql://u@127.0.0.1:1/x")), InEventLoop)


async def test_two_stores_on_one_file_write_a_burst_without_locking_errors(tmp_path: Path):
    """Two processes' stores (an API and a worker) on one SQLite file: each queues its writes on
    its own thread, and SQLite's busy timeout orders the two; no write fails as "locked"."""
    url = f"sqlite+aiosqlite:///{tmp_path}/burst.db"
    await upgrade(url)
    engines = [create_engine(url), create_engine(url)]
    stores = [Store(engine) for engine in engines]
    try:
        saves = [
            stores[i % 2].save_invitation(replace(invitation(f"inv_burst{i:04d}"), email=f"p{i}@example.com"))
            for i in range(400)
        ]
        results = await asyncio.gather(*saves)
        assert all(r.created for r in results)
        assert all([await stores[0].get_invitation(f"inv_burst{i:04d}") for i in range(0, 400, 37)])
    finally:
        for store in stores:
            store.close()
        for engine in engines:
            await engine.dispose()


async def test_a_failing_transaction_leaves_nothing_behind(engine: AsyncEngine, store: Store):
    tx = transactions_for(engine)

    def insert_then_fail(session) -> None:
        session.execute(text("INSERT INTO webhook_receipts VALUES ('wh_1', 200, '{}', '2030-01-01')"))
        raise RuntimeError("half-way")

    try:
        with pytest.raises(RuntimeError, match="half-way"):
            await tx.write(insert_then_fail)
        assert await store.get_webhook("wh_1") is None
    finally:
        tx.close()


async def test_close_stops_the_store_threads(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path}/close.db"
    await upgrade(url)
    engine = create_engine(url)
    before = _db_threads()
    store = Store(engine)
    await store.save_invitation(invitation())
    assert await store.get_invitation(invitation().id) is not None
    assert _db_threads() - before  # a writer and a reader started
    store.close()
    assert _db_threads() <= before
    with pytest.raises(RuntimeError):  # a closed store takes no more work
        await store.get_invitation(invitation().id)
    await engine.dispose()


async def test_a_write_cancelled_while_it_waits_for_the_thread_never_runs(tmp_path: Path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/queue.db")
    tx = InThreads(engine)
    release, ran = threading.Event(), []
    try:
        busy = asyncio.ensure_future(tx.write(lambda _: release.wait(5)))
        queued = asyncio.ensure_future(tx.write(lambda _: ran.append("queued")))
        await asyncio.sleep(0.05)  # the first holds the writer thread, the second waits
        queued.cancel()
        release.set()
        assert await busy is True
        with pytest.raises(asyncio.CancelledError):
            await queued
        await tx.write(lambda _: ran.append("after"))  # the thread has passed where it would run
        assert ran == ["after"]
    finally:
        tx.close()
        await engine.dispose()


async def test_writes_run_one_at_a_time_in_the_order_they_were_asked(tmp_path: Path):
    """One writer thread per store: SQLite's single write lock is taken in turn, first come first
    served, never by two of this process's writes at once."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/order.db")
    tx = InThreads(engine)
    order: list[int] = []
    running, overlapped = threading.Lock(), []

    def write(_: object, i: int) -> None:
        if not running.acquire(blocking=False):
            overlapped.append(i)
            return
        try:
            time.sleep(0.001)
            order.append(i)
        finally:
            running.release()

    try:
        await asyncio.gather(*(tx.write(write, i) for i in range(50)))
        assert (order, overlapped) == (list(range(50)), [])
    finally:
        tx.close()
        await engine.dispose()
