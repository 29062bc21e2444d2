"""`invites show` tells delivery: when SendGrid reported the mail delivered, when the link was
first opened, and why reminders stopped."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from invites.invitations import handle_for
from invites.models import DeliveryInput, OpenedInput
from tests.cli.conftest import Cli, unique_email

pytestmark = pytest.mark.devserver

DELIVERED = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


async def test_show_has_delivery_opening_and_stopped_reminders(cli: Cli):
    created = await cli.create(unique_email(), "--role", "customer")
    before = await cli("show", created["id"])
    assert "not reported" in before.stdout and "not yet" in before.stdout

    handle = handle_for(cli.stack.client, created["id"])
    await handle.signal("delivery", DeliveryInput(event="delivered", seq=0, at=DELIVERED))
    await handle.signal("opened", OpenedInput(at=DELIVERED.replace(hour=10)))
    await handle.signal("delivery", DeliveryInput(event="spamreport", at=DELIVERED))
    async with asyncio.timeout(10):
        while (shown := (await cli.json("show", created["id"]))["invitation"])["reminders_stopped"] is None:
            await asyncio.sleep(0.1)

    assert (shown["delivered_at"], shown["opened_at"]) == ("2026-12-01T09:30:00Z", "2026-12-01T10:30:00Z")
    assert shown["status"] == "pending"
    human = await cli("show", created["id"])
    for text in ("2026-12-01 09:30", "2026-12-01 10:30", "SendGrid reported a spamreport"):
        assert text in human.stdout, text
