"""Outside systems failing: retries honour the servers, nothing is lost, nothing is sent twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType

from invites import invitations
from invites.models import Status
from invites.temporal import auth0_task_queue
from tests.support.auth0 import user_payload
from tests.support.stack import DAY, Stack

ASSIGN = "POST /api/v2/users/{id}/roles"
MAIL_SEND = "POST /v3/mail/send"
LOOKUP = "GET /api/v2/users"  # the batched user search (activities/lookups.py)


@pytest.mark.record_history
async def test_auth0_429_with_retry_after_is_retried_after_the_delay_it_names(stack: Stack):
    async with stack.worker():
        handle = await stack.invite("slow@example.com", roles=("customer",))
        await stack.sent(handle)
        user = stack.auth0.create_user("slow@example.com")
        stack.auth0.faults.status(ASSIGN, 429, headers={"Retry-After": "7"}, times=3)

        result = await stack.redeem(handle, user_payload(stack.auth0, "slow@example.com"))
        # 3 x 7 s is longer than the redeem waits: accepted, with the roles still being granted.
        assert (result.result, result.roles, result.grant) == ("accepted", ["customer"], "pending")
        final = await handle.result()
        assert (final.status, final.grant) == (Status.ACCEPTED, "done")
        assert stack.auth0.role_names(user["user_id"]) == ["customer"]
        assert stack.auth0.faults.count(ASSIGN, status=429) == 3
        assert stack.auth0.faults.count(ASSIGN, status=204) == 1

        # Server-side proof of the delays: the last attempt started >= 3 x 7 s after scheduling.
        scheduled, started = None, None
        async for event in handle.fetch_history_events():
            attrs = event.activity_task_scheduled_event_attributes
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED and (
                attrs.activity_type.name == "grant_access"
            ):
                scheduled = (event.event_id, event.event_time.ToDatetime())
            if (
                scheduled
                and event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
                and event.activity_task_started_event_attributes.scheduled_event_id == scheduled[0]
            ):
                started = event
        assert started is not None
        assert started.activity_task_started_event_attributes.attempt == 4
        waited = started.event_time.ToDatetime() - scheduled[1]
        assert waited >= timedelta(seconds=21)


async def test_sendgrid_down_for_six_hours_then_up_sends_the_mail_once(stack: Stack):
    stack.sendgrid.faults.status(MAIL_SEND, 503, times=10_000)
    async with stack.worker():
        handle = await stack.invite("outage@example.com", reminders=())
        await stack.until(handle, lambda s: stack.sendgrid.faults.count(MAIL_SEND) >= 1)
        await stack.env.sleep(timedelta(hours=6))
        failures = stack.sendgrid.faults.count(MAIL_SEND, status=503)
        assert failures >= 10  # retried all along, with capped backoff
        assert (await stack.state(handle)).mails_sent == 0
        stack.sendgrid.faults.reset()  # SendGrid is back
        await stack.env.sleep(timedelta(minutes=16))  # the next retry (backoff capped at 15 min)

        state = await stack.sent(handle)
        assert state.status == Status.PENDING
        await stack.env.sleep(DAY)
        assert len(stack.sendgrid.messages_to("outage@example.com")) == 1
        assert (await stack.state(handle)).mails_sent == 1


@pytest.mark.record_history
async def test_sendgrid_400_for_a_bad_address_ends_the_invitation_undeliverable(stack: Stack):
    stack.sendgrid.reject("bounce@example.com")
    async with stack.worker():
        handle = await stack.invite("bounce@example.com")
        final = await handle.result()
        assert final.status == Status.UNDELIVERABLE
        assert "SendGrid rejected" in (final.undeliverable_reason or "")
        assert stack.sendgrid.faults.count(MAIL_SEND) == 1  # not retried
        assert stack.sendgrid.messages_to("bounce@example.com") == []


async def test_auth0_outage_during_lookup_is_retried_until_it_answers(stack: Stack):
    stack.auth0.faults.status(LOOKUP, 503, times=2)
    stack.auth0.faults.drop(LOOKUP)
    stack.auth0.create_user("back@example.com")
    async with stack.worker():
        handle = await stack.invite("Back@Example.com")
        state = await stack.sent(handle)
        assert state.screen_hint == "login"  # found despite the upper-case input
        lookups = stack.auth0.faults.calls(LOOKUP)
        assert len(lookups) == 4
        assert {c.query.get("q") for c in lookups} == {'email:("back@example.com")'}


async def test_grant_retries_do_not_assign_roles_twice(stack: Stack):
    async with stack.worker():
        handle = await stack.invite("twice@example.com", roles=("customer", "member"))
        await stack.sent(handle)
        user = stack.auth0.create_user("twice@example.com")
        # The assignment lands, then the answer is lost: the activity retries.
        stack.auth0.faults.status("PATCH /api/v2/users/{id}", 500, times=2)
        result = await stack.redeem(handle, user_payload(stack.auth0, "twice@example.com"))
        assert result.result == "accepted"
        final = await handle.result()
        assert final.grant == "done"
        assert stack.auth0.role_assignments[user["user_id"]] == 2
        assert stack.auth0.faults.count(ASSIGN) == 1


async def test_a_first_mail_that_fails_is_retried_on_the_main_queue_without_a_second_look_up(stack: Stack):
    """The first mail is tried once inside the look-up's activity (on the Auth0 queue);
    a failure that may pass is retried as `send_mail` on the main queue, the look-up not again."""
    stack.sendgrid.faults.status(MAIL_SEND, 503, times=1)
    async with stack.worker():
        handle = await stack.invite("retry@example.com", reminders=())
        state = await stack.sent(handle)
        events = (await handle.fetch_history()).events
    assert (state.status, state.mails_sent, state.screen_hint) == (Status.PENDING, 1, "signup")
    assert len(stack.sendgrid.messages_to("retry@example.com")) == 1
    assert stack.sendgrid.faults.count(MAIL_SEND) == 2
    assert stack.auth0.faults.count(LOOKUP) == 1
    queue = stack.settings.task_queue
    scheduled = [
        (
            e.activity_task_scheduled_event_attributes.activity_type.name,
            e.activity_task_scheduled_event_attributes.task_queue.name,
        )
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name != "publish_event"
    ]
    assert scheduled == [("look_up_and_invite", auth0_task_queue(queue)), ("send_mail", queue)]


async def test_an_invitation_revoked_while_its_look_up_retries_sends_nothing(stack: Stack):
    stack.auth0.faults.status(LOOKUP, 503, times=1_000)
    async with stack.worker():
        handle = await stack.invite("early@example.com")
        await stack.until(handle, lambda _: stack.auth0.faults.count(LOOKUP) >= 2)
        await invitations.revoke(stack.env.client, handle.id.removeprefix("invitation-"), "typo")
        final = await handle.result()
    assert (final.status, final.revoked_reason, final.mails_sent) == (Status.REVOKED, "typo", 0)
    assert stack.sendgrid.faults.count(MAIL_SEND) == 0
