"""The database: tables, async engines, Alembic migrations and the `Store`."""

from invites.db.engine import create_engine, session_factory
from invites.db.migrate import upgrade, upgrade_sync
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
from invites.db.store import Store

__all__ = [
    "InvitationRecord",
    "LinkConflict",
    "LinkedInvitation",
    "MailKind",
    "OutboxMail",
    "SaveResult",
    "Store",
    "StoreError",
    "UnknownInvitation",
    "WebhookReceipt",
    "create_engine",
    "session_factory",
    "upgrade",
    "upgrade_sync",
]
