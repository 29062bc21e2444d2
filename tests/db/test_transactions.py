"""How the store's transactions run: whole or not at all, and on SQLite one write at a time, in
the order asked, a write cancelled while it waits for its turn never running."""

import asyncio
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from invites.db.engine import create_engine
from invites.db.migrate import upgrade
from invites.db.store import Store
from invites.db.transactions import Transactions
from tests.support.records import invitation


async def test_two_stores_on_one_file_write_a_burst_without_locking_errors(tmp_path: Path):
    """Two processes' stores (an API and a worker) on one SQLite file: each takes its writes in
    turn, and SQLite's busy timeout orders the two; no write fails as "locked"."""
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
        for engine in engines:
            await engine.dispose()


async def test_a_failing_transaction_leaves_nothing_behind(engine: AsyncEngine, store: Store):
    def insert_then_fail(session) -> None:
        session.execute(text("INSERT INTO webhook_receipts VALUES ('wh_1', 200, '{}', '2030-01-01')"))
        raise RuntimeError("half-way")

    with pytest.raises(RuntimeError, match="half-way"):
        await Transactions(engine).write(insert_then_fail)
    assert await store.get_webhook("wh_1") is None


async def test_a_write_cancelled_while_it_waits_for_its_turn_never_runs(tmp_path: Path):
    path = tmp_path / "queue.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    tx, ran = Transactions(engine), []

    def note(session, name: str) -> None:
        session.execute(text("SELECT 1"))
        ran.append(name)

    other_process = sqlite3.connect(path, isolation_level=None)
    try:
        other_process.execute("BEGIN IMMEDIATE")  # holds SQLite's write lock: the first write waits
        first = asyncio.ensure_future(tx.write(note, "first"))
        queued = asyncio.ensure_future(tx.write(note, "queued"))
        await asyncio.sleep(0.1)
        assert not first.done() and not queued.done()
        queued.cancel()
        other_process.execute("ROLLBACK")
        await first
        with pytest.raises(asyncio.CancelledError):
            await queued
        await tx.write(note, "after")
        assert ran == ["first", "after"]
    finally:
        other_process.close()
        await engine.dispose()


async def test_writes_run_one_at_a_time_in_the_order_they_were_asked(tmp_path: Path):
    """SQLite's single write lock is taken in turn, first come first served, never by two of
    this process's writes at once (each statement lets the event loop run the others)."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/order.db")
    tx = Transactions(engine)
    order: list[int] = []
    running: list[int] = []
    overlapped: list[int] = []

    def write(session, i: int) -> None:
        running.append(i)
        session.execute(text("SELECT 1"))
        if running != [i]:
            overlapped.append(i)
        running.remove(i)
        order.append(i)

    try:
        await asyncio.gather(*(tx.write(write, i) for i in range(50)))
        assert (order, overlapped) == (list(range(50)), [])
    finally:
        await engine.dispose()
