"""What an accepted invitation's history holds: which activities run where, and in which tasks.

These are the commands the replay test guards; a change here is a change for running
invitations (docs/design.md, "Changing the workflow").
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from invites.temporal import auth0_task_queue
from tests.support.auth0 import user_payload
from tests.support.stack import Stack


async def _accept(stack: Stack, email: str) -> list[HistoryEvent]:
    async with stack.worker():
        handle = await stack.invite(email, roles=("customer",))
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


def _scheduled(events: list[HistoryEvent]) -> dict[str, HistoryEvent]:
    return {
        e.activity_task_scheduled_event_attributes.activity_type.name: e
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }


def _types(events: list[HistoryEvent]) -> Counter[str]:
    return Counter(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in events)


async def test_the_first_task_schedules_the_look_up_with_the_first_mail_beside_the_created_event(
    stack: Stack,
):
    events = await _accept(stack, "first@example.com")
    first_task = []
    for e in events[4:]:  # after the start and the first workflow task's three events
        if e.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            break
        first_task.append(e.activity_task_scheduled_event_attributes.activity_type.name)
    assert sorted(first_task) == ["look_up_and_invite", "publish_event"]
    first = _scheduled(events)["look_up_and_invite"].activity_task_scheduled_event_attributes
    assert first.task_queue.name == auth0_task_queue(stack.settings.task_queue)
    assert json.loads(first.input.payloads[0].data)["kind"] == "invite"
    assert len(stack.sendgrid.messages_to("first@example.com")) == 1


async def test_the_grant_is_one_activity_on_the_main_queue_scheduled_by_the_accepting_task(stack: Stack):
    events = await _accept(stack, "grant@example.com")
    scheduled = _scheduled(events)
    assert set(scheduled) == {"look_up_and_invite", "publish_event", "grant_access"}
    grant = scheduled["grant_access"].activity_task_scheduled_event_attributes
    assert grant.task_queue.name == stack.settings.task_queue
    inp = json.loads(grant.input.payloads[0].data)
    assert inp["roles"] == ["customer"]
    # The account signed in with the invited address, unverified: the grant verifies it.
    assert inp["verify_email"] == "grant@example.com"
    # No workflow task runs between the acceptance and the grant's completion.
    kinds = [e.event_type for e in events]
    accepted = kinds.index(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
    at = events.index(scheduled["grant_access"])
    done = next(
        i
        for i, e in enumerate(events)
        if e.activity_task_completed_event_attributes.scheduled_event_id == events[at].event_id
    )
    assert accepted < at < done
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED not in kinds[accepted:done]
    # The redeem update answers in the accepting task; the caller follows the grant itself.
    answered = kinds.index(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED)
    assert accepted < answered < done


async def test_an_accepted_history_publishes_three_events_to_the_crm(stack: Stack):
    types = _types(await _accept(stack, "crm@example.com"))
    assert types["ACTIVITY_TASK_SCHEDULED"] == 2 + 3  # and publish_event: created, sent, accepted
    assert types["MARKER_RECORDED"] == 2  # the funnel's local activity: created, accepted
    assert types["UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"] == 1  # accepted (the start set the rest)
    assert (types["TIMER_STARTED"], types["TIMER_CANCELED"]) == (1, 1)  # the wait, ended by the redeem


@pytest.mark.record_history
@pytest.mark.parametrize("settings_overrides", [{"crm_backend": "none"}])
async def test_without_a_crm_an_accepted_history_has_two_activities_and_no_more_commands(stack: Stack):
    types = _types(await _accept(stack, "small@example.com"))
    # Besides the workflow tasks (4 on a real server; this one adds some for the test's
    # queries), exactly these (BENCHMARKS.md counts the whole history on the dev server).
    commands = {name: n for name, n in types.items() if not name.startswith("WORKFLOW_TASK_")}
    assert commands == {
        "WORKFLOW_EXECUTION_STARTED": 1,
        "MARKER_RECORDED": 2,  # the funnel's record_funnel: created, accepted
        "ACTIVITY_TASK_SCHEDULED": 2,
        "ACTIVITY_TASK_STARTED": 2,
        "ACTIVITY_TASK_COMPLETED": 2,
        "TIMER_STARTED": 1,
        "TIMER_CANCELED": 1,
        "WORKFLOW_EXECUTION_UPDATE_ACCEPTED": 1,
        "WORKFLOW_EXECUTION_UPDATE_COMPLETED": 1,
        "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES": 1,
        "WORKFLOW_EXECUTION_COMPLETED": 1,
    }
