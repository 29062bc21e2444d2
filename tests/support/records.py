"""Database rows for store tests, built with the fields a test does not care about filled in."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from invites.db.records import InvitationRecord

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
INVITATION_ID = "inv_01JTESTAAAAAAAAAAAAAAAAAAA"


def invitation(invitation_id: str = INVITATION_ID, **changes: Any) -> InvitationRecord:
    """An invitation row created at T0; `changes` replace any field."""
    rec = InvitationRecord(
        id=invitation_id,
        email="Ada@Example.COM",
        data={"plan": "pro"},
        app_metadata={"tier": "gold"},
        request_hash="hash-1",
        created_at=T0,
    )
    return replace(rec, **changes)
