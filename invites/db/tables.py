"""The database tables (SQLAlchemy typed declarative). Changes need an Alembic revision."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, DateTime, Dialect, Float, ForeignKey, Index, MetaData, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that only accepts aware datetimes and always comes back aware, in UTC.

    PostgreSQL keeps `timestamptz`; SQLite has no time zones, so the UTC wall time is
    stored and UTC is attached again on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a time zone (UTC) with it")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


Json = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: Json, Any: Json}


class Invitation(Base):
    __tablename__ = "invitations"

    id: Mapped[str] = mapped_column(primary_key=True)
    email: Mapped[str]
    external_ref: Mapped[str | None] = mapped_column(unique=True)
    data: Mapped[dict[str, Any]]
    app_metadata: Mapped[dict[str, Any]]
    request_hash: Mapped[str]
    idempotency_key: Mapped[str | None] = mapped_column(unique=True)
    reissued_from: Mapped[str | None]
    # How the invitation was asked for (roles, locale, reminders, policy...): a reissue repeats it.
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]


class AccountLink(Base):
    __tablename__ = "account_links"

    invitation_id: Mapped[str] = mapped_column(ForeignKey(Invitation.id), primary_key=True)
    user_id: Mapped[str] = mapped_column(index=True)
    email: Mapped[str]
    accepted_at: Mapped[datetime]


class Mail(Base):
    __tablename__ = "outbox"
    __table_args__ = (CheckConstraint("kind IN ('invite', 'reminder')", name="kind"),)

    id: Mapped[str] = mapped_column(primary_key=True)
    invitation_id: Mapped[str] = mapped_column(index=True)
    to: Mapped[str]
    kind: Mapped[str]
    subject: Mapped[str]
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    link: Mapped[str]
    sent_at: Mapped[datetime]


class WebhookReceiptRow(Base):
    __tablename__ = "webhook_receipts"

    webhook_id: Mapped[str] = mapped_column(primary_key=True)
    status_code: Mapped[int]
    response: Mapped[Any]
    expires_at: Mapped[datetime] = mapped_column(index=True)


FUNNEL_STAGE_COLUMNS = ("delivered_at", "opened_at", "accepted_at", "ended")


class FunnelRow(Base):
    """One invitation's way through the funnel (`invites/db/funnel.py`): each stage's first time.

    Written by the workflow's `record_funnel` local activity at every transition, so
    GET /v1/stats/funnel counts rows here and never scans Temporal.
    """

    __tablename__ = "funnel"
    # Per key (source, campaign): one index covering the counts of a window (read from the index
    # alone), one in time-to-accept order within the key (a percentile is a short walk along it).
    __table_args__ = (
        Index("ix_funnel_source_counts", "source", "created_at", *FUNNEL_STAGE_COLUMNS),
        Index("ix_funnel_campaign_counts", "campaign", "created_at", *FUNNEL_STAGE_COLUMNS),
        Index("ix_funnel_source_wait", "source", "time_to_accept_s", "created_at"),
        Index("ix_funnel_campaign_wait", "campaign", "time_to_accept_s", "created_at"),
    )

    invitation_id: Mapped[str] = mapped_column(primary_key=True)
    source: Mapped[str | None]
    campaign: Mapped[str | None]
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    opened_at: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]
    # Seconds from creation to acceptance, kept so percentiles need no date arithmetic in SQL.
    time_to_accept_s: Mapped[float | None] = mapped_column(Float)
    # `expired`, `revoked` or `undeliverable`: how a non-accepted invitation ended.
    ended: Mapped[str | None]
    ended_at: Mapped[datetime | None]
