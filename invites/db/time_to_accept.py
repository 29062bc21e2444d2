"""Time to accept as a histogram: per group, how many invitations were accepted within each
bucket of time, read from the funnel table (`invites/db/funnel.py`) like the funnel's counts.

The buckets are fixed, so histograms of different windows and groups compare: from under a
minute (an invitee who was waiting for the mail) to a week and more (the reminders' work).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Table, and_, case, func, select
from sqlalchemy.orm import Session

from invites.db.store import Store
from invites.db.tables import FunnelRow

GroupBy = Literal["source", "campaign"]
# Upper bounds (seconds, excluded) of every bucket but the last, which is open-ended.
BOUNDS_S = (60, 600, 3600, 6 * 3600, 86_400, 3 * 86_400, 7 * 86_400)


@dataclass
class Histogram:
    key: str | None
    counts: list[int]  # len(BOUNDS_S) + 1 buckets


class TimeToAcceptStore:
    """Reads the funnel table in the `Store`'s transactions."""

    def __init__(self, store: Store) -> None:
        self._tx = store.transactions
        table: Table = FunnelRow.__table__  # type: ignore[assignment]
        self._table = table

    async def histograms(self, start: datetime, end: datetime, by: GroupBy) -> list[Histogram]:
        """Per group, the invitations created in [start, end) and accepted, counted by how long
        they took; groups with no acceptance are left out, the largest group first."""
        return await self._tx.read(self._histograms, start, end, by)

    def _histograms(self, session: Session, start: datetime, end: datetime, by: GroupBy) -> list[Histogram]:
        t = self._table
        seconds = t.c.time_to_accept_s
        bucket = case(*((seconds < bound, i) for i, bound in enumerate(BOUNDS_S)), else_=len(BOUNDS_S))
        rows = session.execute(
            select(t.c[by].label("key"), bucket.label("bucket"), func.count().label("n"))
            .where(and_(t.c.created_at >= start, t.c.created_at < end, seconds.is_not(None)))
            .group_by(t.c[by], bucket)
        )
        counts: dict[str | None, list[int]] = defaultdict(lambda: [0] * (len(BOUNDS_S) + 1))
        for row in rows:
            counts[row.key][int(row.bucket)] += int(row.n)
        return sorted(
            (Histogram(key, c) for key, c in counts.items()), key=lambda h: (-sum(h.counts), h.key or "")
        )
