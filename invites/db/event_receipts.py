"""Receipts of provider events applied once, in the webhook receipts table under a namespace.

`POST /v1/webhooks/sendgrid` claims each `sg_event_id` as `sendgrid:<id>` before it applies the
event: a claim is won by one caller only, so a repeated event (SendGrid delivers at least
once) is not applied again. A claim is short-lived until `confirm` (once its event is applied)
makes it a receipt that lasts: a process that dies in between leaves claims that lapse, so the
provider's retry applies those events. A claim whose event could not be applied is released at
once. Receipts expire like the Auth0 webhook's and the maintenance schedule purges them
(`Store.purge_expired_webhooks`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from invites.db.store import Store
from invites.db.tables import WebhookReceiptRow

# Rows per statement: well under SQLite's and PostgreSQL's parameter limits.
CHUNK = 500


class EventReceipts:
    def __init__(self, store: Store, namespace: str) -> None:
        self._tx = store.transactions
        self._prefix = f"{namespace}:"
        table: Table = WebhookReceiptRow.__table__  # type: ignore[assignment]
        self._table = table
        insert = postgresql.insert if store.dialect == "postgresql" else sqlite.insert
        self._insert = insert(table).on_conflict_do_nothing().returning(table.c.webhook_id)

    async def claim(self, event_ids: list[str], ttl: timedelta, *, now: datetime | None = None) -> set[str]:
        """Claim these events, in one transaction; returns those this call won (not seen before,
        or seen so long ago that their receipt expired)."""
        now = now or datetime.now(UTC)
        return await self._tx.write(self._claim, list(dict.fromkeys(event_ids)), now, now + ttl)

    def _claim(self, session: Session, event_ids: list[str], now: datetime, expires_at: datetime) -> set[str]:
        t = self._table
        won: set[str] = set()
        for start in range(0, len(event_ids), CHUNK):
            keys = [self._prefix + event_id for event_id in event_ids[start : start + CHUNK]]
            rows: list[dict[str, Any]] = [
                {"webhook_id": key, "status_code": 200, "response": {}, "expires_at": expires_at}
                for key in keys
            ]
            won.update(session.scalars(self._insert, rows).all())
            taken_over = (
                update(t)
                .where(t.c.webhook_id.in_(keys), t.c.expires_at <= now)
                .values(expires_at=expires_at)
                .returning(t.c.webhook_id)
            )
            won.update(session.scalars(taken_over).all())
        return {key.removeprefix(self._prefix) for key in won}

    async def confirm(self, event_ids: list[str], ttl: timedelta, *, now: datetime | None = None) -> None:
        """Keep these claims for `ttl` from now: their events were applied."""
        if not event_ids:
            return
        keys = [self._prefix + event_id for event_id in event_ids]
        expires_at = (now or datetime.now(UTC)) + ttl

        def confirm(session: Session) -> None:
            t = self._table
            for start in range(0, len(keys), CHUNK):
                session.execute(
                    update(t)
                    .where(t.c.webhook_id.in_(keys[start : start + CHUNK]))
                    .values(expires_at=expires_at)
                )

        await self._tx.write(confirm)

    async def release(self, event_ids: list[str]) -> None:
        """Forget claims whose events were not applied, so a retry applies them."""
        if not event_ids:
            return
        keys = [self._prefix + event_id for event_id in event_ids]

        def release(session: Session) -> None:
            for start in range(0, len(keys), CHUNK):
                session.execute(
                    delete(self._table).where(self._table.c.webhook_id.in_(keys[start : start + CHUNK]))
                )

        await self._tx.write(release)
