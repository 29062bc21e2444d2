"""Payload encryption (SPEC §6): AES-256-GCM over every Temporal payload, with key ids.

With `INVITES_PAYLOAD_KEYS` set, workflow inputs and results, signals, updates, queries and
activity arguments are ciphertext in history; failure messages and stack traces too (the
failure converter moves them into an encoded attribute). The first key encrypts; every key in
the ring decrypts, so rotation is: put the new key first, keep the old ones while histories
encrypted with them are retained.

Search attributes are not payloads and are never encrypted: `InvitationEmail` then holds a keyed
hash of the lower-cased address (`email_search_keys`), never the address itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

from invites.settings import Settings, parse_keyring

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
EMAIL_INDEX_LABEL = b"invites/email-index"


class UnknownPayloadKey(Exception):
    """A payload was encrypted with a key id that is not in the ring (or fails to decrypt)."""


class EncryptionCodec(PayloadCodec):
    def __init__(self, keyring: list[tuple[str, bytes]]):
        if not keyring:
            raise ValueError("the payload keyring is empty")
        for kid, key in keyring:
            if len(key) != 32:
                raise ValueError(f"payload key {kid!r} must be 32 bytes (AES-256)")
        self._active_kid = keyring[0][0]
        self._ciphers = {kid: AESGCM(key) for kid, key in keyring}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decrypt(p) if p.metadata.get("encoding") == ENCODING else p for p in payloads]

    def _encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        kid = self._active_kid
        sealed = self._ciphers[kid].encrypt(nonce, payload.SerializeToString(), kid.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: kid.encode()}, data=nonce + sealed)

    def _decrypt(self, payload: Payload) -> Payload:
        kid = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise UnknownPayloadKey(f"no payload key {kid!r} in INVITES_PAYLOAD_KEYS")
        try:
            plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], kid.encode())
        except (InvalidTag, ValueError):  # ValueError: data shorter than its nonce
            raise UnknownPayloadKey(f"payload key {kid!r} does not decrypt this payload") from None
        return Payload.FromString(plain)


def payload_keyring(settings: Settings) -> list[tuple[str, bytes]] | None:
    if settings.payload_keys is None:
        return None
    return parse_keyring(settings.payload_keys.get_secret_value(), name="INVITES_PAYLOAD_KEYS")


def build_data_converter(settings: Settings) -> DataConverter:
    """Pydantic payloads, encrypted (with encoded failure attributes) when payload keys are set."""
    keyring = payload_keyring(settings)
    if keyring is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keyring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def email_search_keys(settings: Settings, email: str) -> list[str]:
    """What `InvitationEmail` may hold for this address, the current form first.

    Without payload keys: the lower-cased address. With them: an HMAC per key in the ring
    (new invitations use the first; searching tries all, so rotation keeps old ones findable).
    """
    normalized = email.strip().lower()
    keyring = payload_keyring(settings)
    if keyring is None:
        return [normalized]
    return [_email_hash(key, normalized) for _, key in keyring]


def _email_hash(key: bytes, normalized: str) -> str:
    index_key = hmac.new(key, EMAIL_INDEX_LABEL, hashlib.sha256).digest()
    return "h1:" + hmac.new(index_key, normalized.encode(), hashlib.sha256).hexdigest()[:40]
