"""How fast GET /v1/stats/funnel's query answers over a large funnel table.

    .venv/bin/python -m bench.funnel_stats                      # 100,000 invitations, SQLite
    .venv/bin/python -m bench.funnel_stats --rows 100000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_funnel   # an empty database

Fills a fresh database (migrated as the API does) with `--rows` invitations spread over 30 days,
8 sources and 40 campaigns, at realistic stages (most delivered, some opened, a fifth accepted,
some expired, revoked or bounced), then times the store query the endpoint runs
(`FunnelStore.counts`) for the whole 30-day window, by source and by campaign, and prints the
median and worst of `--repeat` runs in milliseconds. Nothing here touches Temporal.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from invites.db.engine import create_engine
from invites.db.funnel import FunnelStore
from invites.db.migrate import upgrade
from invites.db.store import Store
from invites.db.tables import FunnelRow

WINDOW = timedelta(days=30)
CHUNK = 5000


def _rows(n: int, end: datetime, seed: int = 17) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        created = end - WINDOW * rng.random()
        row: dict[str, Any] = {
            "invitation_id": f"inv_bench{i:021d}",
            "source": f"source-{rng.randrange(8)}",
            "campaign": f"campaign-{rng.randrange(40)}" if rng.random() < 0.7 else None,
            "created_at": created,
            "delivered_at": None,
            "opened_at": None,
            "accepted_at": None,
            "time_to_accept_s": None,
            "ended": None,
            "ended_at": None,
        }
        roll = rng.random()
        if roll < 0.03:
            row["ended"], row["ended_at"] = "undeliverable", created + timedelta(seconds=5)
        else:
            row["delivered_at"] = created + timedelta(seconds=3)
            if roll < 0.6:
                row["opened_at"] = created + timedelta(hours=rng.uniform(0.1, 48))
            if roll < 0.23:
                wait = rng.uniform(60, 6 * 86400)
                row["accepted_at"], row["time_to_accept_s"] = created + timedelta(seconds=wait), wait
            elif roll < 0.26:
                row["ended"], row["ended_at"] = "revoked", created + timedelta(days=1)
            elif roll < 0.5:
                row["ended"], row["ended_at"] = "expired", created + timedelta(days=14)
        rows.append(row)
    return rows


async def run(rows: int, url: str, repeat: int) -> dict[str, float]:
    await upgrade(url)
    engine = create_engine(url)
    store = Store(engine)
    try:
        end = datetime.now(UTC)
        data = _rows(rows, end)
        async with engine.begin() as connection:
            for start in range(0, len(data), CHUNK):
                await connection.execute(insert(FunnelRow.__table__), data[start : start + CHUNK])
        if engine.dialect.name == "postgresql":
            # What autovacuum does to a live table: statistics and a visibility map, so the
            # planner knows its row counts and index-only scans need no heap reads.
            async with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
                await connection.execute(text("VACUUM ANALYZE funnel"))
        funnel = FunnelStore(store)
        figures: dict[str, float] = {}
        for by in ("source", "campaign"):
            await funnel.counts(end - WINDOW, end, by)  # warm the cache, as a live database is
            times = []
            for _ in range(repeat):
                began = time.perf_counter()
                groups = await funnel.counts(end - WINDOW, end, by)
                times.append((time.perf_counter() - began) * 1000)
            if sum(g.created for g in groups) != rows:
                raise SystemExit(f"counted {sum(g.created for g in groups)} invitations, expected {rows}")
            figures[f"funnel_stats_by_{by}_ms_p50"] = statistics.median(times)
            figures[f"funnel_stats_by_{by}_ms_max"] = max(times)
        return figures
    finally:
        store.close()
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.funnel_stats", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database-url", help="an empty database (default: a new SQLite file)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(folder) / 'funnel.db'}"
        figures = asyncio.run(run(args.rows, url, args.repeat))
    print(f"funnel stats over {args.rows:,} invitations ({url.split(':')[0]}):")
    for name, value in figures.items():
        print(f"  {name:<34} {value:8.1f}")


if __name__ == "__main__":
    main()
