"""The funnel table: each invitation's first time at every stage, and the counts read from it.

The workflow records its transitions here (`activities/funnel.py`, a local activity), and
`GET /v1/stats/funnel` and `/metrics` count rows; nothing scans Temporal. A stage is recorded
once: the row is inserted by whichever fact comes first, and a stage's column is only written
while it is empty, so a retried or replayed record changes nothing.

Counts are per cohort: the invitations created in [from, to), each counted at every stage it
reached (one created in the window and accepted after it counts as accepted).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Table, and_, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from invites.db.store import Store
from invites.db.tables import FunnelRow
from invites.models import FunnelFact

GroupBy = Literal["source", "campaign"]
ENDINGS = ("expired", "revoked", "undeliverable")
STAGE_COLUMNS = {"delivered": "delivered_at", "opened": "opened_at", "accepted": "accepted_at"}


@dataclass
class FunnelCounts:
    """One group's counts (the stats endpoint adds the rate and the percentiles)."""

    key: str | None
    created: int = 0
    delivered: int = 0
    opened: int = 0
    accepted: int = 0
    expired: int = 0
    revoked: int = 0
    undeliverable: int = 0
    p50: float | None = None
    p90: float | None = None

    @property
    def accept_rate(self) -> float:
        return round(self.accepted / self.created, 4) if self.created else 0.0


class FunnelStore:
    """The funnel's reads and writes, in the `Store`'s transactions (one per method)."""

    def __init__(self, store: Store) -> None:
        self._tx = store.transactions
        table: Table = FunnelRow.__table__  # type: ignore[assignment]
        self._table = table
        insert = postgresql.insert if store.dialect == "postgresql" else sqlite.insert
        self._insert = insert(table).on_conflict_do_nothing().returning(table.c.invitation_id)

    async def record(self, fact: FunnelFact) -> bool:
        """Record one stage of one invitation; False when it was recorded before."""
        return await self._tx.write(self._record, fact)

    def _record(self, session: Session, fact: FunnelFact) -> bool:
        t = self._table
        inserted = session.scalar(
            self._insert,
            {
                "invitation_id": fact.invitation_id,
                "source": fact.source,
                "campaign": fact.campaign,
                "created_at": fact.created_at,
            },
        )
        if fact.stage == "created":
            return inserted is not None
        row = t.c.invitation_id == fact.invitation_id
        if fact.stage in ENDINGS:
            stmt = update(t).where(row, t.c.ended.is_(None)).values(ended=fact.stage, ended_at=fact.at)
        else:
            column = STAGE_COLUMNS[fact.stage]
            values: dict[str, Any] = {column: fact.at}
            if fact.stage == "accepted":
                values["time_to_accept_s"] = max(0.0, (fact.at - fact.created_at).total_seconds())
            stmt = update(t).where(row, t.c[column].is_(None)).values(values)
        return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]

    async def counts(self, start: datetime, end: datetime, by: GroupBy) -> list[FunnelCounts]:
        """Per group, the invitations created in [start, end): their stage counts and time to
        accept (p50, p90, nearest rank), largest group first."""
        return await self._tx.read(self._counts, start, end, by)

    def _counts(self, session: Session, start: datetime, end: datetime, by: GroupBy) -> list[FunnelCounts]:
        t = self._table
        key = t.c[by]
        window = and_(t.c.created_at >= start, t.c.created_at < end)
        groups = {
            row.key: FunnelCounts(
                key=row.key, **{k: int(v or 0) for k, v in row._mapping.items() if k != "key"}
            )
            for row in session.execute(
                select(key.label("key"), *_stage_counts(t)).where(window).group_by(key)
            )
        }
        # The window as an expression, not a range SQLite could take the counts index for (with no
        # statistics it would, then sort): the walk goes along the time-to-accept index, reading
        # created_at from it. PostgreSQL plans the same either way.
        created = func.coalesce(t.c.created_at, t.c.created_at)
        in_window = and_(created >= start, created < end)
        for group in groups.values():
            if group.accepted:
                group.p50, group.p90 = _percentiles(session, t, key, group.key, in_window, group.accepted)
        return sorted(groups.values(), key=lambda g: (-g.created, g.key or ""))

    async def totals(self, sources: list[str] | None) -> dict[tuple[str, str], int]:
        """All-time counts per (stage, source) for /metrics. With `sources`, a source outside
        the list counts as `other` and no source as `none`; without, every source is `all`."""
        return await self._tx.read(self._totals, sources)

    def _totals(self, session: Session, sources: list[str] | None) -> dict[tuple[str, str], int]:
        t = self._table
        totals: dict[tuple[str, str], int] = defaultdict(int)
        stmt = select(t.c.source.label("key"), *_stage_counts(t)).group_by(t.c.source)
        for row in session.execute(stmt):
            label = (
                "all"
                if not sources
                else row.key
                if row.key in sources
                else "none"
                if row.key is None
                else "other"
            )
            for stage, count in row._mapping.items():
                if stage != "key":
                    totals[(stage, label)] += int(count or 0)
        return dict(totals)


def _stage_counts(t: Table) -> list[Any]:
    return [
        func.count().label("created"),
        func.count(t.c.delivered_at).label("delivered"),
        func.count(t.c.opened_at).label("opened"),
        func.count(t.c.accepted_at).label("accepted"),
        *(func.sum(case((t.c.ended == ending, 1), else_=0)).label(ending) for ending in ENDINGS),
    ]


def _percentiles(
    session: Session, t: Table, key: Any, value: str | None, window: Any, n: int
) -> tuple[float, float]:
    """p50 and p90 of one group's time to accept, by nearest rank (the value at rank ⌈p·n⌉ of
    its `n` acceptances): each a walk of at most n entries along the group's time-to-accept
    index (`ix_funnel_<key>_wait`)."""
    group = key.is_(None) if value is None else key == value
    stmt = (
        select(t.c.time_to_accept_s)
        .where(group, window, t.c.time_to_accept_s.is_not(None))
        .order_by(t.c.time_to_accept_s)
        .limit(1)
    )
    p50, p90 = ((n + 1) // 2, (9 * n + 9) // 10)
    return (
        float(session.scalar(stmt.offset(p50 - 1)) or 0.0),
        float(session.scalar(stmt.offset(p90 - 1)) or 0.0),
    )
