"""Invitation ids: `inv_` + 26 Crockford base32 characters (a ULID, or 128 bits derived from a ref)."""

from __future__ import annotations

import hashlib
import re

from ulid import ULID

PREFIX = "inv_"
ID_PATTERN = re.compile(r"^inv_[0-7][0-9A-HJKMNP-TV-Z]{25}$")


def new_invitation_id() -> str:
    """A fresh, time-ordered id."""
    return PREFIX + str(ULID())


def invitation_id_for_ref(external_ref: str) -> str:
    """The stable id of the funnel's `external_ref`: the same ref always names the same invitation."""
    digest = hashlib.sha256(b"invites/external_ref\x00" + external_ref.encode()).digest()
    return PREFIX + str(ULID.from_bytes(digest[:16]))


def invitation_id_for_key(idempotency_key: str) -> str:
    """The stable id of an `Idempotency-Key` header (its own namespace, apart from refs)."""
    digest = hashlib.sha256(b"invites/idempotency_key\x00" + idempotency_key.encode()).digest()
    return PREFIX + str(ULID.from_bytes(digest[:16]))


def invitation_id_for_reissue(invitation_id: str) -> str:
    """The stable id of an invitation's reissue (its own namespace: no funnel key can take it)."""
    digest = hashlib.sha256(b"invites/reissue\x00" + invitation_id.encode()).digest()
    return PREFIX + str(ULID.from_bytes(digest[:16]))


def is_invitation_id(value: str) -> bool:
    return bool(ID_PATTERN.match(value))


def id_to_bytes(invitation_id: str) -> bytes:
    if not is_invitation_id(invitation_id):
        raise ValueError("not an invitation id")
    return ULID.from_str(invitation_id[len(PREFIX) :]).bytes


def id_from_bytes(raw: bytes) -> str:
    return PREFIX + str(ULID.from_bytes(raw))


def workflow_id(invitation_id: str) -> str:
    return f"invitation-{invitation_id}"
