"""Every workflow version runs on today's worker: version 6 for new invitations, 1 to 5 for
invitations started before it (their commands must not change; see workflows/invitation.py)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from invites.temporal import auth0_task_queue

from .conftest import Stack, user_payload

GRANTS = {"assign_roles", "merge_app_metadata", "mark_email_verified"}  # versions 1 and 2
GRANTS_V3 = {"assign_roles", "update_profile"}


async def _accept(stack: Stack, email: str, version: int) -> list[HistoryEvent]:
    async with stack.worker():
        handle = await stack.invite(email, roles=("customer",), version=version)
        await stack.sent(handle)
        stack.auth0.create_user(email)
        result = await stack.redeem(handle, user_payload(stack.auth0, email))
        assert (result.result, result.grant) == ("accepted", "done")
        await handle.result()
    assert sum(stack.auth0.role_assignments.values()) == 1
    user_id = user_payload(stack.auth0, email)["user_id"]
    assert [link.invitation_id for link in await stack.store.links_for_user(user_id)] == [
        handle.id.removeprefix("invitation-")
    ]
    return list((await handle.fetch_history()).events)


def _scheduled(events: list[HistoryEvent]) -> dict[str, Any]:
    attributes = [
        e.activity_task_scheduled_event_attributes
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    return {a.activity_type.name: a for a in attributes}


def _types(events: list[HistoryEvent]) -> Counter[str]:
    return Counter(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in events)


async def test_version_6_publishes_the_events_aside_from_the_first_task_on(stack: Stack):
    """The first task schedules the first mail beside the `created` event; version 5 awaited the
    event before its first mail. The same activities otherwise."""
    events = await _accept(stack, "six@example.com", version=6)
    assert set(_scheduled(events)) == {"look_up_and_invite", "publish_event", "grant_access"}
    first_task = []
    for e in events[4:]:  # after the start and the first workflow task's three events
        if e.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            break
        first_task.append(e.activity_task_scheduled_event_attributes.activity_type.name)
    assert sorted(first_task) == ["look_up_and_invite", "publish_event"]
    assert _types(events)["ACTIVITY_TASK_SCHEDULED"] == 2 + 3  # and publish_event: created, sent, accepted


async def test_version_5_looks_up_and_sends_the_first_mail_in_one_activity(stack: Stack):
    events = await _accept(stack, "five@example.com", version=5)
    scheduled, types = _scheduled(events), _types(events)
    # The first task awaits the `created` event alone; the first mail comes a task later.
    assert events[4].activity_task_scheduled_event_attributes.activity_type.name == "publish_event"
    assert events[5].event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    assert set(scheduled) == {"look_up_and_invite", "publish_event", "grant_access"}
    first = scheduled["look_up_and_invite"]
    assert first.task_queue.name == auth0_task_queue(stack.settings.task_queue)
    [payload] = first.input.payloads
    assert json.loads(payload.data)["kind"] == "invite"
    assert len(stack.sendgrid.messages_to("five@example.com")) == 1
    assert types["MARKER_RECORDED"] == 0
    assert types["ACTIVITY_TASK_SCHEDULED"] == 2 + 3  # and publish_event: created, sent, accepted


async def test_version_4_grants_in_one_activity_and_closes_one_task_later(stack: Stack):
    events = await _accept(stack, "four@example.com", version=4)
    scheduled, types = _scheduled(events), _types(events)
    assert set(scheduled) == {"find_users_by_email", "send_mail", "publish_event", "grant_access"}
    grant = scheduled["grant_access"]
    assert grant.task_queue.name == stack.settings.task_queue
    [payload] = grant.input.payloads
    inp = json.loads(payload.data)
    assert inp["roles"]["roles"] == ["customer"]
    assert inp["profile"]["verify_email"] == "four@example.com"
    assert inp["link"]["user_id"] == inp["roles"]["user_id"] == inp["profile"]["user_id"]
    assert types["MARKER_RECORDED"] == 0  # the link is inside the grant call
    # Scheduled by the accepting task, and no workflow task runs until it has completed.
    kinds = [e.event_type for e in events]
    accepted = kinds.index(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
    at = next(i for i, e in enumerate(events) if e.activity_task_scheduled_event_attributes == grant)
    done = next(
        i
        for i, e in enumerate(events)
        if e.activity_task_completed_event_attributes.scheduled_event_id == events[at].event_id
    )
    assert accepted < at < done
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED not in kinds[accepted:done]
    assert types["UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"] == 1
    assert (types["TIMER_STARTED"], types["TIMER_CANCELED"]) == (1, 1)


async def test_version_3_writes_the_profile_in_one_activity(stack: Stack):
    events = await _accept(stack, "three@example.com", version=3)
    scheduled, types = _scheduled(events), _types(events)
    queue = stack.settings.task_queue
    assert set(scheduled) == {"find_users_by_email", "send_mail", "publish_event", *GRANTS_V3}
    assert {name: scheduled[name].task_queue.name for name in GRANTS_V3} == dict.fromkeys(GRANTS_V3, queue)
    [profile] = scheduled["update_profile"].input.payloads
    # The account signed in with the invited address, unverified: the one write verifies it.
    assert json.loads(profile.data)["verify_email"] == "three@example.com"
    assert types["MARKER_RECORDED"] == 1  # the account link, a local activity
    assert types["UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"] == 1
    assert (types["TIMER_STARTED"], types["TIMER_CANCELED"]) == (1, 1)


async def test_version_2_grants_on_the_main_queue_with_a_lean_history(stack: Stack):
    events = await _accept(stack, "lean@example.com", version=2)
    scheduled, types = _scheduled(events), _types(events)
    queue = stack.settings.task_queue
    assert {name: scheduled[name].task_queue.name for name in GRANTS} == dict.fromkeys(GRANTS, queue)
    assert scheduled["find_users_by_email"].task_queue.name == auth0_task_queue(queue)
    assert "link_account" not in scheduled  # a local activity: a marker
    assert types["MARKER_RECORDED"] == 1
    # One upsert (accepted): the start set the attributes; one timer (the wait), no grant wait.
    assert types["UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"] == 1
    assert (types["TIMER_STARTED"], types["TIMER_CANCELED"]) == (1, 1)


async def test_version_1_still_runs_its_own_commands(stack: Stack):
    events = await _accept(stack, "older@example.com", version=1)
    scheduled, types = _scheduled(events), _types(events)
    auth0 = auth0_task_queue(stack.settings.task_queue)
    assert {name: scheduled[name].task_queue.name for name in GRANTS} == dict.fromkeys(GRANTS, auth0)
    assert scheduled["link_account"].task_queue.name == stack.settings.task_queue
    # The start's attributes again, accepted, and the SDK's change version of the patch.
    assert types["UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"] == 3
    assert (types["TIMER_STARTED"], types["TIMER_CANCELED"]) == (2, 2)  # wait loop + grant wait
