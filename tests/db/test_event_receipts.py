"""Event receipts on SQLite and PostgreSQL: a claim is won once, a release lets a retry win."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from invites.db.event_receipts import EventReceipts
from invites.db.store import Store

NOW = datetime(2026, 12, 1, tzinfo=UTC)
DAY = timedelta(days=1)


async def test_each_event_is_claimed_once_across_batches_and_namespaces(store: Store):
    sendgrid = EventReceipts(store, "sendgrid")
    ids = [f"ev-{n}" for n in range(1200)]  # more than one statement's chunk
    assert await sendgrid.claim(ids, DAY, now=NOW) == set(ids)
    assert await sendgrid.claim([*ids[:10], "ev-new", "ev-new"], DAY, now=NOW) == {"ev-new"}
    # Another namespace's ids never collide, nor does the Auth0 webhook's receipt table use.
    assert await EventReceipts(store, "other").claim(ids[:3], DAY, now=NOW) == set(ids[:3])
    assert await store.get_webhook("ev-1", now=NOW) is None


async def test_a_released_claim_is_won_again(store: Store):
    sendgrid = EventReceipts(store, "sendgrid")
    assert await sendgrid.claim(["a", "b"], DAY, now=NOW) == {"a", "b"}
    await sendgrid.release(["b"])
    assert await sendgrid.claim(["a", "b"], DAY, now=NOW) == {"b"}


async def test_an_expired_receipt_is_claimed_again_and_purged_by_maintenance(store: Store):
    sendgrid = EventReceipts(store, "sendgrid")
    assert await sendgrid.claim(["old"], DAY, now=NOW) == {"old"}
    assert await sendgrid.claim(["old"], DAY, now=NOW + 2 * DAY) == {"old"}
    assert await store.purge_expired_webhooks(NOW + 4 * DAY) == 1


async def test_a_claim_lapses_unless_confirmed(store: Store):
    sendgrid = EventReceipts(store, "sendgrid")
    minutes = timedelta(minutes=2)
    assert await sendgrid.claim(["kept", "lapsed"], minutes, now=NOW) == {"kept", "lapsed"}
    await sendgrid.confirm(["kept"], DAY, now=NOW)
    # A retry after the claim's two minutes: the unconfirmed one is claimed (applied) again.
    assert await sendgrid.claim(["kept", "lapsed"], minutes, now=NOW + 2 * minutes) == {"lapsed"}
