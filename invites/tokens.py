"""Invitation link tokens (SPEC §5): opaque, URL-safe, HMAC-SHA256 signed, never a JWT.

Layout before base64url (no padding):
    version (1 byte) | kid length (1) | kid | invitation id (16, the ULID bytes)
    | link generation (4, big-endian) | HMAC-SHA256 over all of the above, truncated to 16 bytes

Expiry and single use are not in the token: they live in the workflow, so extending or
revoking needs no new token. Rotating `INVITES_TOKEN_KEYS`: the first key signs, every key
verifies, so put the new key first and drop the old one after the longest expiry has passed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from dataclasses import dataclass

from invites.ids import id_from_bytes, id_to_bytes

VERSION = 1
MAC_BYTES = 16  # 128 bits
MAX_TOKEN_CHARS = 128


class InvalidToken(Exception):
    """The token is malformed, forged, altered, or signed by no configured key."""


@dataclass(frozen=True)
class LinkToken:
    invitation_id: str
    generation: int
    kid: str


class TokenSigner:
    """Creates and verifies tokens with a keyring `[(kid, key), ...]`; the first key signs."""

    def __init__(self, keyring: list[tuple[str, bytes]]):
        if not keyring:
            raise ValueError("a token keyring needs at least one key")
        self._active_kid, self._active_key = keyring[0]
        self._keys = dict(keyring)

    def create(self, invitation_id: str, generation: int) -> str:
        if not 0 <= generation < 2**32:
            raise ValueError("generation out of range")
        kid = self._active_kid.encode()
        body = bytes([VERSION, len(kid)]) + kid + id_to_bytes(invitation_id) + struct.pack(">I", generation)
        return _b64(body + _mac(self._active_key, body))

    def verify(self, token: str) -> LinkToken:
        """Return what the token names, or raise InvalidToken. Constant-time MAC check."""
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
            raise InvalidToken("bad length")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError) as exc:
            raise InvalidToken("not base64url") from exc
        if _b64(raw) != token:  # one encoding per token: no padding, no stray bits
            raise InvalidToken("non-canonical encoding")
        if len(raw) < 2 or raw[0] != VERSION:
            raise InvalidToken("unknown version")
        kid_len = raw[1]
        expected_len = 2 + kid_len + 16 + 4 + MAC_BYTES
        if len(raw) != expected_len:
            raise InvalidToken("bad length")
        body, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        kid = body[2 : 2 + kid_len].decode("ascii", errors="replace")
        key = self._keys.get(kid)
        if key is None or not hmac.compare_digest(mac, _mac(key, body)):
            raise InvalidToken("bad signature")
        id_raw = body[2 + kid_len : 2 + kid_len + 16]
        (generation,) = struct.unpack(">I", body[-4:])
        return LinkToken(invitation_id=id_from_bytes(id_raw), generation=generation, kid=kid)


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()[:MAC_BYTES]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
