"""POST /v1/webhooks/sendgrid: SendGrid's Event Webhook, signed with ECDSA.

SendGrid posts a JSON array of events, at least once each, up to thousands at a time. Each
event finds its invitation through the `custom_args` our mails carry (`invitation_id`, `seq`)
and becomes a `delivery` signal; the workflow decides what it changes. The answer comes once
every event of the batch is signalled (a signal is durable in Temporal once sent):

- a bad event (unknown type, missing fields, another application's mail) is counted and
  skipped; the others are applied;
- each `sg_event_id` is claimed once (`invites/db/event_receipts.py`), so a redelivered event
  changes nothing;
- signals go out with bounded concurrency; if Temporal is unreachable the claims not applied
  are released and the answer is 503, so SendGrid retries the batch and the retry applies only
  what is missing.
"""

from __future__ import annotations

import asyncio
import binascii
import functools
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader
from temporalio.service import RPCError, RPCStatusCode

from api.deps import ServicesDep
from api.errors import ApiError, unavailable
from api.services import Services
from invites.db.event_receipts import EventReceipts
from invites.ids import ID_PATTERN
from invites.invitations import handle_for
from invites.models import DeliveryInput, DeliveryKind
from invites.schemas import ErrorBody

router = APIRouter(tags=["sendgrid"])
log = logging.getLogger("invites.api.sendgrid")

SIGNATURE = EventWebhookHeader.SIGNATURE  # X-Twilio-Email-Event-Webhook-Signature
TIMESTAMP = EventWebhookHeader.TIMESTAMP  # X-Twilio-Email-Event-Webhook-Timestamp
# A signed batch older (or newer) than this is refused: a captured post cannot be replayed later.
TOLERANCE_S = 5 * 60
# SendGrid retries a failed post for up to a day; a receipt outlives that. Until its event is
# applied a claim lasts CLAIM_TTL: an API that dies meanwhile leaves a claim that lapses before
# SendGrid's retry, which then applies the event.
RECEIPT_TTL = timedelta(days=3)
CLAIM_TTL = timedelta(minutes=2)
# Signals in flight at once per batch: a big batch is answered in seconds without flooding
# Temporal's frontend.
SIGNALS_IN_FLIGHT = 32
# What each SendGrid event means to the workflow; the others (processed, deferred, open, click,
# group_resubscribe, and `bounce` of type `blocked`, a soft bounce) change nothing.
KINDS: dict[str, DeliveryKind] = {
    "delivered": "delivered",
    "bounce": "bounce",
    "dropped": "dropped",
    "spamreport": "spamreport",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
}


class SendGridEvent(BaseModel):
    """One event as SendGrid sends it; our `custom_args` arrive as top-level fields."""

    model_config = ConfigDict(extra="ignore")

    event: str = Field(max_length=64)
    sg_event_id: str = Field(min_length=1, max_length=128)
    timestamp: int = Field(ge=0)
    invitation_id: str | None = Field(None, pattern=ID_PATTERN.pattern)
    seq: int | None = Field(None, ge=0)
    type: str | None = Field(None, max_length=32)  # bounce: `bounce` (hard) or `blocked` (soft)
    reason: str | None = None
    status: str | None = Field(None, max_length=16)

    @field_validator("reason")
    @classmethod
    def _short(cls, value: str | None) -> str | None:
        return value[:300] if value else value

    def delivery(self) -> DeliveryInput | None:
        """The signal this event makes, or None when it changes nothing."""
        kind = KINDS.get(self.event)
        if kind is None or self.invitation_id is None or (kind == "bounce" and self.type == "blocked"):
            return None
        reason = None
        if kind in ("bounce", "dropped"):
            detail = " ".join(part for part in (self.status, self.reason) if part)
            reason = f"SendGrid {self.event}: {detail}" if detail else f"SendGrid {self.event}"
        return DeliveryInput(
            event=kind, seq=self.seq, at=datetime.fromtimestamp(self.timestamp, UTC), reason=reason
        )


class SendGridReceipt(BaseModel):
    """What became of a batch (SendGrid only looks at the status)."""

    received: int
    applied: int = Field(description="Signalled to their invitation.")
    duplicates: int = Field(description="`sg_event_id` seen before: not applied again.")
    ignored: int = Field(description="Events that change nothing, or for an ended or unknown invitation.")
    invalid: int = Field(description="Events that are not SendGrid events: skipped.")


@router.post(
    "/v1/webhooks/sendgrid",
    response_model=SendGridReceipt,
    responses={
        401: {"model": ErrorBody, "description": "Bad, missing or stale signature, or no key configured"},
        422: {"model": ErrorBody, "description": "`invalid_request`: a signed body that is not a JSON array"},
        503: {"model": ErrorBody, "description": "Temporal unreachable: SendGrid retries the batch"},
    },
)
async def sendgrid_events(request: Request, services: ServicesDep) -> SendGridReceipt:
    """Apply SendGrid Event Webhook events (ECDSA-signed) to their invitations, each once."""
    body = await request.body()  # at most 1 MiB (api/limits.py)
    key = services.settings.sendgrid_event_public_key
    if not key or not _verified(key, body, request.headers.get(SIGNATURE), request.headers.get(TIMESTAMP)):
        services.metrics.rejected_early.labels("sendgrid", "bad_signature").inc()
        raise ApiError(401, "invalid_signature", "The Event Webhook signature or timestamp is not valid.")
    try:
        raw = json.loads(body)
    except ValueError:
        raw = None
    if not isinstance(raw, list):
        raise ApiError(422, "invalid_request", "The body must be a JSON array of SendGrid events.")

    receipt = SendGridReceipt(received=len(raw), applied=0, duplicates=0, ignored=0, invalid=0)
    signals: dict[str, tuple[str, DeliveryInput]] = {}
    for item in raw:
        try:
            event = SendGridEvent.model_validate(item)
        except ValidationError:
            receipt.invalid += 1
            continue
        delivery = event.delivery()
        if delivery is None or event.invitation_id is None:
            receipt.ignored += 1
        elif event.sg_event_id in signals:
            receipt.duplicates += 1
        else:
            signals[event.sg_event_id] = (event.invitation_id, delivery)

    receipts = EventReceipts(services.store, "sendgrid")
    claimed = await receipts.claim(list(signals), CLAIM_TTL)
    receipt.duplicates += len(signals) - len(claimed)
    outcomes = await _signal_all(services, {k: v for k, v in signals.items() if k in claimed})
    unapplied = [event_id for event_id, outcome in outcomes.items() if outcome == "failed"]
    if unapplied:
        await receipts.release(unapplied)
        _count(services, receipt)
        log.warning("sendgrid events not applied: Temporal unreachable", extra={"events": len(unapplied)})
        raise unavailable("Temporal")
    await receipts.confirm(list(outcomes), RECEIPT_TTL)
    receipt.applied = sum(1 for outcome in outcomes.values() if outcome == "applied")
    receipt.ignored += sum(1 for outcome in outcomes.values() if outcome == "ignored")
    _count(services, receipt)
    return receipt


async def _signal_all(services: Services, signals: dict[str, tuple[str, DeliveryInput]]) -> dict[str, str]:
    """Signal each event's invitation, a few at a time. Outcome per event: `applied`; `ignored`
    (no such running invitation: ended, or never ours); `failed` (Temporal unreachable: once
    one fails so, the rest are not tried and fail too)."""
    outcomes = dict.fromkeys(signals, "failed")
    gate = asyncio.Semaphore(SIGNALS_IN_FLIGHT)
    down = asyncio.Event()

    async def signal(event_id: str, invitation_id: str, delivery: DeliveryInput) -> None:
        async with gate:
            if down.is_set():
                return
            try:
                await handle_for(services.temporal, invitation_id).signal("delivery", delivery)
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    down.set()
                    return
                outcomes[event_id] = "ignored"
                return
            except RuntimeError:  # a lazily connected client while Temporal is down
                down.set()
                return
            outcomes[event_id] = "applied"

    await asyncio.gather(*(signal(event_id, *target) for event_id, target in signals.items()))
    return outcomes


def _verified(public_key: str, body: bytes, signature: str | None, timestamp: str | None) -> bool:
    """SendGrid's ECDSA signature over timestamp + body, checked by the `sendgrid` package's
    helper, and a timestamp within TOLERANCE_S of now."""
    if not signature or not timestamp or not timestamp.isdigit():
        return False
    if abs(time.time() - int(timestamp)) > TOLERANCE_S:
        return False
    try:
        return bool(_verifier(public_key).verify_signature(body.decode(), signature, timestamp))
    except (ValueError, TypeError, binascii.Error, InvalidSignature, UnicodeDecodeError):
        return False  # a malformed signature, key or body


@functools.lru_cache(maxsize=4)
def _verifier(public_key: str) -> EventWebhook:
    """The helper with the key parsed once (it raises ValueError for a key that does not parse)."""
    return EventWebhook(public_key)


def _count(services: Services, receipt: SendGridReceipt) -> None:
    for result in ("applied", "duplicates", "ignored", "invalid"):
        value: Any = getattr(receipt, result)
        if value:
            services.metrics.sendgrid_events.labels(result).inc(value)
