"""The database behind the API and the activities: one transaction per method.

Inserts use `INSERT ... ON CONFLICT DO NOTHING` (SQLite and PostgreSQL alike), so a
concurrent or repeated write of the same key is never an error: the first writer's row
stays and later callers are told so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast, get_args

from sqlalchemy import Table, delete, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert

from invites.db.records import (
    InvitationRecord,
    LinkConflict,
    LinkedInvitation,
    MailKind,
    OutboxMail,
    SaveResult,
    StoreError,
    UnknownInvitation,
    WebhookReceipt,
)
from invites.db.tables import AccountLink, Invitation, Mail, WebhookReceiptRow
from invites.db.transactions import Transactions, transactions_for

R = TypeVar("R")


class Store:
    """Invitations' funnel data, account links, the local mail outbox and webhook receipts.

    Each method is one transaction, written as a synchronous function of a `Session` and run
    by `invites.db.transactions` (in the event loop on PostgreSQL, in a thread on SQLite).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._tx = transactions_for(engine)
        self.dialect = engine.dialect.name
        # Built once: an INSERT whose values come as parameters is compiled once and cached,
        # where `.values(...)` per call costs a new statement and its cache key every time.
        insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._insert_invitation = _insert_new(insert, Invitation.__table__, "id")
        self._insert_link = _insert_new(insert, AccountLink.__table__, "invitation_id")
        self._insert_mail = _insert_new(insert, Mail.__table__, "id")
        self._insert_receipt = _insert_new(insert, WebhookReceiptRow.__table__, "webhook_id")

    @property
    def transactions(self) -> Transactions:
        """The store's transactions, for the stores of other tables (`invites/db/funnel.py`)."""
        return self._tx

    def close(self) -> None:
        """Stop the threads and connections the store opened itself (the engine is the caller's)."""
        self._tx.close()

    async def ping(self) -> None:
        """Return when the database answers; raise (a SQLAlchemy or OS error) when it does not."""
        await self._tx.read(lambda session: session.execute(text("SELECT 1")))

    async def save_invitation(self, rec: InvitationRecord) -> SaveResult:
        """Store a new invitation, or leave alone the one already stored under its keys.

        The keys are its id, `external_ref` and `idempotency_key`: a row holding any of
        them counts as the existing invitation, and its id and request hash come back.
        """
        return await self._tx.write(self._save_invitation, rec)

    def _save_invitation(self, session: Session, rec: InvitationRecord) -> SaveResult:
        values = {
            "id": rec.id,
            "email": rec.email.lower(),
            "external_ref": rec.external_ref,
            "data": rec.data,
            "app_metadata": rec.app_metadata,
            "request_hash": rec.request_hash,
            "idempotency_key": rec.idempotency_key,
            "reissued_from": rec.reissued_from,
            "options": rec.options,
            "created_at": rec.created_at,
        }
        if session.scalar(self._insert_invitation, values) is not None:
            return SaveResult(created=True, invitation_id=rec.id, request_hash=rec.request_hash)
        existing = _existing_invitation(session, rec)
        return SaveResult(created=False, invitation_id=existing.id, request_hash=existing.request_hash)

    async def get_invitation(self, invitation_id: str) -> InvitationRecord | None:
        def get(session: Session) -> InvitationRecord | None:
            row = session.get(Invitation, invitation_id)
            return _record(InvitationRecord, row) if row is not None else None

        return await self._tx.read(get)

    async def find_by_idempotency_key(self, key: str) -> InvitationRecord | None:
        def find(session: Session) -> InvitationRecord | None:
            row = session.scalar(select(Invitation).where(Invitation.idempotency_key == key))
            return _record(InvitationRecord, row) if row is not None else None

        return await self._tx.read(find)

    async def link_account(self, invitation_id: str, user_id: str, email: str, accepted_at: datetime) -> bool:
        """Link the account that accepted the invitation; False when it already was.

        Raises `LinkConflict` when another account holds the link, `UnknownInvitation`
        when the invitation was never saved.
        """
        values = {
            "invitation_id": invitation_id,
            "user_id": user_id,
            "email": email,
            "accepted_at": accepted_at,
        }

        def link(session: Session) -> str | None:
            """None when this call linked it, else the account that holds the link."""
            try:
                if session.scalar(self._insert_link, values) is not None:
                    return None
            except IntegrityError as exc:  # only the foreign key can fail here
                raise UnknownInvitation(invitation_id) from exc
            return session.get_one(AccountLink, invitation_id).user_id

        holder = await self._tx.write(link)
        if holder is None:
            return True
        if holder != user_id:
            raise LinkConflict(invitation_id, holder)
        return False

    async def links_for_user(self, user_id: str) -> list[LinkedInvitation]:
        """The invitations this account accepted, newest acceptance first, with the roles each
        granted (as asked for on create, kept in `options`)."""
        stmt = (
            select(AccountLink, Invitation)
            .join(Invitation, Invitation.id == AccountLink.invitation_id)
            .where(AccountLink.user_id == user_id)
            .order_by(AccountLink.accepted_at.desc(), AccountLink.invitation_id.desc())
        )

        def links(session: Session) -> list[LinkedInvitation]:
            return [
                LinkedInvitation(
                    invitation_id=link.invitation_id,
                    user_id=link.user_id,
                    account_email=link.email,
                    accepted_at=link.accepted_at,
                    email=invitation.email,
                    data=invitation.data,
                    created_at=invitation.created_at,
                    roles=list(invitation.options.get("roles") or []),
                )
                for link, invitation in session.execute(stmt).all()
            ]

        return await self._tx.read(links)

    async def unlink_account(self, invitation_id: str, user_id: str) -> bool:
        """Undo `link_account` (a rollback); False when that account held no link to it."""

        def unlink(session: Session) -> int:
            stmt = delete(AccountLink).where(
                AccountLink.invitation_id == invitation_id, AccountLink.user_id == user_id
            )
            return cast(CursorResult[Any], session.execute(stmt)).rowcount

        return await self._tx.write(unlink) > 0

    async def other_links(self, user_id: str, invitation_id: str) -> list[InvitationRecord]:
        """The other invitations this account accepted (what a rollback of one must not undo)."""
        stmt = (
            select(Invitation)
            .join(AccountLink, AccountLink.invitation_id == Invitation.id)
            .where(AccountLink.user_id == user_id, AccountLink.invitation_id != invitation_id)
        )

        def others(session: Session) -> list[InvitationRecord]:
            return [_record(InvitationRecord, row) for row in session.scalars(stmt)]

        return await self._tx.read(others)

    async def record_mail(self, mail: OutboxMail) -> bool:
        """Keep a mail in the outbox; False when one with its id is already there."""
        if mail.kind not in get_args(MailKind):
            raise ValueError(f"mail kind {mail.kind!r} is not one of {get_args(MailKind)}")
        values = {
            "id": mail.id,
            "invitation_id": mail.invitation_id,
            "to": mail.to,
            "kind": mail.kind,
            "subject": mail.subject,
            "html": mail.html,
            "text": mail.text,
            "link": mail.link,
            "sent_at": mail.sent_at,
        }

        return await self._tx.write(lambda session: session.scalar(self._insert_mail, values) is not None)

    async def mail_recorded(self, mail_id: str) -> bool:
        """Whether a mail with this id was already sent (the mail activity's idempotency check)."""
        stmt = select(Mail.id).where(Mail.id == mail_id)
        return await self._tx.read(lambda session: session.scalar(stmt) is not None)

    async def list_outbox(self, limit: int = 50, invitation_id: str | None = None) -> list[OutboxMail]:
        """The latest mails, newest first, optionally those of one invitation."""
        stmt = select(Mail).order_by(Mail.sent_at.desc(), Mail.id.desc()).limit(limit)
        if invitation_id is not None:
            stmt = stmt.where(Mail.invitation_id == invitation_id)
        return await self._tx.read(
            lambda session: [_record(OutboxMail, row) for row in session.scalars(stmt)]
        )

    async def remember_webhook(
        self,
        webhook_id: str,
        status_code: int,
        response: Any,
        ttl: timedelta,
        *,
        now: datetime | None = None,
    ) -> WebhookReceipt:
        """Keep the reply to a webhook id for `ttl`; the first writer wins.

        Returns the receipt that is stored: this one, or the one an earlier call left for
        the same id while it has not expired (an expired one is replaced).
        """
        now = now or datetime.now(UTC)
        values = {"status_code": status_code, "response": response, "expires_at": now + ttl}

        def remember(session: Session) -> WebhookReceipt:
            table = WebhookReceiptRow.__table__
            if session.scalar(self._insert_receipt, {"webhook_id": webhook_id, **values}) is None:
                session.execute(
                    update(table)
                    .where(table.c.webhook_id == webhook_id, table.c.expires_at <= now)
                    .values(values)
                )
            return _record(WebhookReceipt, session.get_one(WebhookReceiptRow, webhook_id))

        return await self._tx.write(remember)

    async def get_webhook(self, webhook_id: str, *, now: datetime | None = None) -> WebhookReceipt | None:
        """The unexpired receipt for a webhook id, if it was seen."""
        now = now or datetime.now(UTC)
        stmt = select(WebhookReceiptRow).where(
            WebhookReceiptRow.webhook_id == webhook_id, WebhookReceiptRow.expires_at > now
        )

        def get(session: Session) -> WebhookReceipt | None:
            row = session.scalar(stmt)
            return _record(WebhookReceipt, row) if row is not None else None

        return await self._tx.read(get)

    async def purge_expired_webhooks(self, now: datetime | None = None) -> int:
        """Delete the expired receipts; returns how many went."""
        now = now or datetime.now(UTC)
        table = WebhookReceiptRow.__table__
        stmt = delete(table).where(table.c.expires_at <= now)
        return await self._tx.write(lambda session: cast("CursorResult[Any]", session.execute(stmt)).rowcount)


def _insert_new(
    insert: Callable[[Table], sqlite.Insert | postgresql.Insert], table: Table, key: str
) -> ReturningInsert[Any]:
    """`INSERT ... ON CONFLICT DO NOTHING RETURNING key` on the table itself (Core: the ORM's
    bulk path costs more and adds nothing): the key comes back when the row was inserted."""
    return insert(table).on_conflict_do_nothing().returning(table.c[key])


def _existing_invitation(session: Session, rec: InvitationRecord) -> Invitation:
    keys = [Invitation.id == rec.id]
    if rec.external_ref is not None:
        keys.append(Invitation.external_ref == rec.external_ref)
    if rec.idempotency_key is not None:
        keys.append(Invitation.idempotency_key == rec.idempotency_key)
    rows = session.scalars(select(Invitation).where(or_(*keys))).all()
    if not rows:
        raise StoreError(f"Invitation {rec.id} was neither stored nor found; retry the save.")
    return min(rows, key=lambda row: row.id != rec.id)  # the same id first


def _record(kind: type[R], row: Any) -> R:
    """A row as the record of the same fields: the store hands out no SQLAlchemy objects. (A
    mail's `kind` is one of MailKind: the table's CHECK constraint holds it to these.)"""
    return kind(**{f.name: getattr(row, f.name) for f in fields(kind)})  # type: ignore[arg-type]
