"""What the store takes and returns: plain dataclasses, no SQLAlchemy objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from invites.models import MailKind


@dataclass(frozen=True, slots=True, kw_only=True)
class InvitationRecord:
    """The funnel's data for one invitation; the workflow holds its lifecycle."""

    id: str
    email: str
    data: dict[str, Any]
    app_metadata: dict[str, Any]
    request_hash: str
    created_at: datetime
    external_ref: str | None = None
    idempotency_key: str | None = None
    reissued_from: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class SaveResult:
    """Outcome of `Store.save_invitation`: the stored row's id and request hash.

    When `created` is false the row was already there (same id, `external_ref` or
    `idempotency_key`) and was left untouched; compare `request_hash` to detect a
    repeat with a different body.
    """

    created: bool
    invitation_id: str
    request_hash: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkedInvitation:
    """An accepted invitation as its account sees it (`GET /v1/me`)."""

    invitation_id: str
    user_id: str
    account_email: str
    accepted_at: datetime
    email: str
    data: dict[str, Any]
    created_at: datetime
    roles: list[str] = field(default_factory=list)  # the roles the invitation granted


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxMail:
    """A mail as kept by the local outbox backend. `id` is the caller's idempotency key."""

    id: str
    invitation_id: str
    to: str
    kind: MailKind
    subject: str
    html: str
    text: str
    link: str
    sent_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookReceipt:
    """The reply given to a webhook id, replayed while it has not expired."""

    webhook_id: str
    status_code: int
    response: Any
    expires_at: datetime


class StoreError(Exception):
    """Base class of the store's own errors."""


class LinkConflict(StoreError):
    """The invitation is already linked to another account."""

    def __init__(self, invitation_id: str, linked_user_id: str) -> None:
        super().__init__(
            f"Invitation {invitation_id} is already linked to another account; "
            "it cannot be linked to a second one."
        )
        self.invitation_id = invitation_id
        self.linked_user_id = linked_user_id


class UnknownInvitation(StoreError, LookupError):
    """No invitation with that id is stored."""

    def __init__(self, invitation_id: str) -> None:
        super().__init__(f"Invitation {invitation_id} is not in the database; save it first.")
        self.invitation_id = invitation_id
