"""The fake SendGrid's Event Webhook: events about each accepted mail, signed and posted as
SendGrid does.

SendGrid signs a post with ECDSA P-256 over SHA-256 of `timestamp + body`, sends the base64 DER
signature in `X-Twilio-Email-Event-Webhook-Signature` and the Unix time in
`X-Twilio-Email-Event-Webhook-Timestamp`, and publishes the public key as base64 DER
(SubjectPublicKeyInfo). A post answered with anything but 2xx is retried.

The development key pair is fixed (its private scalar is the phrase below), so `invites dev`
and its README can name the public key (`invites.settings.DEV_SENDGRID_EVENT_PUBLIC_KEY`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
DEV_KEY_PHRASE = b"invites-dev-sendgrid-events-key!"
# Reserved local parts: mail to bounce@… bounces for good (SMTP 550), mail to drop@… is dropped.
BOUNCE_LOCAL_PART = "bounce"
DROP_LOCAL_PART = "drop"
# The fake's own retries of a post the receiver did not take (SendGrid keeps trying for hours).
RETRY_DELAYS_S = (0.5, 1, 2, 5, 10, 30)
POST_TIMEOUT_S = 10

log = logging.getLogger("sandbox.sendgrid.events")


def dev_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(DEV_KEY_PHRASE, "big"), ec.SECP256R1())


def public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    """The verification key as SendGrid shows it (Mail Settings → Signed Event Webhook)."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def signed_headers(key: ec.EllipticCurvePrivateKey, body: bytes, at: int | None = None) -> dict[str, str]:
    """The headers SendGrid sends with `body`, signed at Unix time `at` (default now)."""
    timestamp = str(int(time.time()) if at is None else at)
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "Content-Type": "application/json",
        SIGNATURE: base64.b64encode(signature).decode(),
        TIMESTAMP: timestamp,
    }


def event(
    kind: str, email: str, message_id: str, custom_args: dict[str, str], at: int | None = None, **extra: Any
) -> dict[str, Any]:
    """One event as SendGrid posts it: our custom_args at the top level."""
    return {
        "email": email,
        "timestamp": int(time.time()) if at is None else at,
        "event": kind,
        "sg_event_id": base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("="),
        "sg_message_id": f"{message_id}.filter0001.fake.0",
        **custom_args,
        **extra,
    }


def outcome_events(
    email: str, message_id: str, custom_args: dict[str, str], bounce: bool
) -> list[dict[str, Any]]:
    """What SendGrid reports about one accepted mail: processed, then delivered, bounced or
    dropped."""
    local = email.split("@", 1)[0].lower()
    events = [event("processed", email, message_id, custom_args)]
    if local == DROP_LOCAL_PART:
        events.append(event("dropped", email, message_id, custom_args, reason="Bounced Address"))
    elif bounce or local == BOUNCE_LOCAL_PART:
        events.append(
            event(
                "bounce",
                email,
                message_id,
                custom_args,
                type="bounce",
                status="5.1.1",
                reason="550 5.1.1 The email account that you tried to reach does not exist.",
            )
        )
    else:
        events.append(event("delivered", email, message_id, custom_args, response="250 OK"))
    return events


@dataclass
class EventPoster:
    """Posts signed batches to the Event Webhook URL, retrying until the receiver takes them."""

    url: str
    key: ec.EllipticCurvePrivateKey = field(default_factory=dev_private_key)
    retry_delays: tuple[float, ...] = RETRY_DELAYS_S
    clock: Callable[[], float] = time.time
    # Each post's answer, in order: (status or None when unreachable, the events).
    posts: list[tuple[int | None, list[dict[str, Any]]]] = field(default_factory=list)

    async def post(self, events: list[dict[str, Any]]) -> bool:
        """Post one batch; True once the receiver answered 2xx."""
        body = json.dumps(events, separators=(",", ":")).encode()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT_S)) as session:
            for delay in (0.0, *self.retry_delays):
                await asyncio.sleep(delay)
                status = await self._post_once(session, body)
                self.posts.append((status, events))
                if status is not None and 200 <= status < 300:
                    return True
        log.warning("event webhook post given up after %d attempts", len(self.retry_delays) + 1)
        return False

    async def _post_once(self, session: aiohttp.ClientSession, body: bytes) -> int | None:
        try:
            headers = signed_headers(self.key, body, int(self.clock()))
            async with session.post(self.url, data=body, headers=headers) as response:
                return response.status
        except (aiohttp.ClientError, TimeoutError):
            return None
