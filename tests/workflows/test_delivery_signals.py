"""The `delivery` and `opened` signals in the workflow itself (time-skipping), recorded for replay.

What the SendGrid webhook and the link route send is tested over HTTP in
tests/api/test_sendgrid_events.py; here the runs that carry those signals are kept as histories
so the replay test covers them.
"""

from __future__ import annotations

import pytest

from invites.models import DeliveryInput, OpenedInput, Status
from tests.support.auth0 import user_payload
from tests.support.stack import DAY, Stack
from workflows.invitation import InvitationWorkflow


@pytest.mark.record_history
async def test_delivered_and_opened_are_kept_once_then_the_invitation_is_accepted(stack: Stack):
    async with stack.worker():
        handle = await stack.invite("seen@example.com")
        await stack.sent(handle)
        first = await stack.now()
        await handle.signal(InvitationWorkflow.delivery, DeliveryInput(event="delivered", seq=0, at=first))
        await handle.signal(InvitationWorkflow.opened, OpenedInput(at=first))
        later = first + DAY
        await handle.signal(InvitationWorkflow.delivery, DeliveryInput(event="delivered", seq=1, at=later))
        await handle.signal(InvitationWorkflow.opened, OpenedInput(at=later))
        state = await stack.until(handle, lambda s: s.opened_at is not None and s.delivered_at is not None)
        assert (state.delivered_at, state.opened_at) == (first, first)

        stack.auth0.create_user("seen@example.com")
        result = await stack.redeem(handle, user_payload(stack.auth0, "seen@example.com"))
        assert result.result == "accepted"
        final = await handle.result()
        assert (final.status, final.delivered_at, final.opened_at) == (Status.ACCEPTED, first, first)


@pytest.mark.record_history
async def test_a_bounce_ends_the_invitation_and_a_spam_report_stops_reminders(stack: Stack):
    async with stack.worker():
        bounced = await stack.invite("gone@example.com")
        spam = await stack.invite("spam@example.com", expires_in=10 * DAY)
        await stack.sent(bounced)
        await stack.sent(spam)
        now = await stack.now()
        bounce = DeliveryInput(event="bounce", seq=0, at=now, reason="550 no such user")
        await bounced.signal(InvitationWorkflow.delivery, bounce)
        await spam.signal(InvitationWorkflow.delivery, DeliveryInput(event="spamreport", seq=0, at=now))
        final = await bounced.result()
        assert (final.status, final.undeliverable_reason) == (Status.UNDELIVERABLE, "550 no such user")

        await stack.env.sleep(11 * DAY)  # past both reminder offsets and the expiry
        ended = await spam.result()
        assert (ended.status, ended.reminders_sent, ended.mails_sent) == (Status.EXPIRED, 0, 1)
        assert ended.reminders_stopped == "spamreport"
