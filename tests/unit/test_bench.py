"""`invites bench`'s own arithmetic: percentiles, billable actions, process and metrics parsing."""

from __future__ import annotations

import asyncio

from temporalio.api.common.v1 import ActivityType, Payload, SearchAttributes
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import (
    ActivityTaskCompletedEventAttributes,
    ActivityTaskScheduledEventAttributes,
    ActivityTaskStartedEventAttributes,
    HistoryEvent,
    MarkerRecordedEventAttributes,
    UpsertWorkflowSearchAttributesEventAttributes,
)

from bench.first_tasks import FirstSteps
from bench.main import _add_cpu, _cpu_per, _meets, _pct, history_figures, rounds_of, server_actions
from bench.stack import is_worker, role


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert _pct(values, 50) == 50.0
    assert _pct(values, 95) == 95.0
    assert _pct([7.0], 95) == 7.0


def test_targets_compare_in_their_direction() -> None:
    assert _meets(0.8, ">=", 0.7) is True
    assert _meets(5, "<=", 4) is False
    assert _meets(None, "<=", 4) is None


def test_worker_processes_are_recognised_as_dev_and_the_cli_start_them() -> None:
    assert is_worker(["/venv/bin/python", "-m", "cli", "worker"])
    assert is_worker(["/venv/bin/python3", "/venv/bin/invites", "worker"])
    assert not is_worker(["/venv/bin/python", "-m", "cli", "api"])
    assert not is_worker(["/venv/bin/python", "-m", "pytest", "tests/worker"])


def test_stack_processes_are_named_by_their_part() -> None:
    assert role(["/venv/bin/temporal", "server", "start-dev", "--port", "7233"]) == "temporal"
    assert role(["/venv/bin/python", "-m", "sandbox", "--port", "8100"]) == "auth0 sandbox"
    assert role(["/venv/bin/python", "-m", "cli", "worker"]) == "worker"
    assert role(["/venv/bin/python", "-m", "cli", "api"]) == "api"
    assert role(["/venv/bin/python", "/venv/bin/invites", "dev"]) == "dev (log relay)"
    assert role(["/usr/bin/python3", "-m", "pytest"]) is None
    assert role([]) is None


def test_cpu_per_item_is_each_parts_difference_and_their_total() -> None:
    before = {"temporal": 10.0, "api": 2.0, "bench": 1.0}
    after = {"temporal": 17.5, "api": 4.0, "bench": 1.5, "worker": 0.25}  # a part seen only later
    used = _cpu_per(before, after, 500)
    assert used == {"api": 4.0, "bench": 1.0, "temporal": 15.0, "worker": 0.5, "total": 20.5}


def test_rounds_split_the_load_into_consecutive_near_equal_blocks() -> None:
    assert rounds_of(2000, 4) == [range(0, 500), range(500, 1000), range(1000, 1500), range(1500, 2000)]
    assert rounds_of(10, 4) == [range(0, 3), range(3, 6), range(6, 8), range(8, 10)]
    assert rounds_of(3, 4) == [range(0, 1), range(1, 2), range(2, 3)]  # never an empty block
    assert rounds_of(20, 1) == [range(0, 20)]


def test_cpu_of_several_blocks_adds_up_each_parts_differences() -> None:
    total: dict[str, float] = {}
    _add_cpu(total, {"temporal": 1.0, "api": 0.5}, {"temporal": 2.0, "api": 1.0})
    _add_cpu(total, {"temporal": 5.0, "api": 3.0}, {"temporal": 5.5, "api": 3.0, "worker": 0.25})
    assert total == {"temporal": 1.5, "api": 0.5, "worker": 0.25}
    assert _cpu_per({}, total, 1000)["total"] == 2.25


def test_server_action_counters_are_summed_per_type_for_the_namespace() -> None:
    page = "\n".join(
        [
            "# HELP action action counter",
            'action{action_type="grpc_StartWorkflowExecution",namespace="default",operation="x"} 3',
            'action{action_type="grpc_StartWorkflowExecution",namespace="temporal_system",operation="x"} 9',
            'action{action_type="command_StartTimer",namespace="default",operation="y"} 2',
            'action_latency{action_type="command_StartTimer",namespace="default"} 5',
        ]
    )
    assert server_actions(page, "default") == {"grpc_StartWorkflowExecution": 3, "command_StartTimer": 2}


def _event(event_id: int, kind: int, ms: int = 0, **attrs: object) -> HistoryEvent:
    event = HistoryEvent(event_id=event_id, event_type=kind, **attrs)  # type: ignore[arg-type]
    event.event_time.FromMilliseconds(1_700_000_000_000 + ms)
    return event


def _scheduled(event_id: int, name: str, ms: int = 0) -> HistoryEvent:
    attrs = ActivityTaskScheduledEventAttributes(activity_type=ActivityType(name=name))
    return _event(
        event_id,
        EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
        ms,
        activity_task_scheduled_event_attributes=attrs,
    )


def _started(event_id: int, scheduled: int, ms: int = 0, attempt: int = 1) -> HistoryEvent:
    attrs = ActivityTaskStartedEventAttributes(scheduled_event_id=scheduled, attempt=attempt)
    return _event(
        event_id, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED, ms, activity_task_started_event_attributes=attrs
    )


def _completed(event_id: int, scheduled: int, ms: int = 0) -> HistoryEvent:
    attrs = ActivityTaskCompletedEventAttributes(scheduled_event_id=scheduled)
    return _event(
        event_id,
        EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
        ms,
        activity_task_completed_event_attributes=attrs,
    )


def _marker(event_id: int, task: int) -> HistoryEvent:
    attrs = MarkerRecordedEventAttributes(workflow_task_completed_event_id=task)
    return _event(event_id, EventType.EVENT_TYPE_MARKER_RECORDED, marker_recorded_event_attributes=attrs)


def test_billable_actions_count_attempts_timers_upserts_and_marker_batches() -> None:
    """The SDK's TemporalChangeVersion upsert (from `workflow.patched`) is in history but not
    billed; the markers of one workflow task are one action."""
    e = EventType
    change_version = UpsertWorkflowSearchAttributesEventAttributes(
        search_attributes=SearchAttributes(indexed_fields={"TemporalChangeVersion": Payload()})
    )
    events = [
        _event(1, e.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED),
        _event(4, e.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
        _event(5, e.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES),
        _scheduled(6, "look_up_and_invite"),
        _started(7, 6, attempt=2),
        _scheduled(8, "send_mail"),
        _started(9, 8),
        _event(10, e.EVENT_TYPE_TIMER_STARTED),
        _marker(11, task=4),
        _marker(12, task=4),
        _event(13, e.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED),
        _event(
            14,
            e.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
            upsert_workflow_search_attributes_event_attributes=change_version,
        ),
    ]
    figures = history_figures(events)
    assert figures["history_events"] == 12
    assert figures["actions_breakdown"] == {
        "start": 1,
        "activity_attempts": 3,
        "timers": 1,
        "search_attribute_upserts": 1,
        "signals": 0,
        "updates": 1,
        "marker_batches": 1,
    }
    assert figures["actions"] == 8


def test_redeem_phases_split_the_accepted_run_by_event_time() -> None:
    e = EventType
    events = [
        _event(1, e.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, 0),
        _scheduled(2, "look_up_and_invite", 0),
        _completed(3, 2, 50),  # the first mail, before the redeem
        _event(4, e.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, 1000),
        _event(5, e.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, 1012),
        _event(6, e.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED, 1012),
        _scheduled(7, "grant_access", 1012),
        _scheduled(8, "publish_event", 1012),  # a CRM event alongside: not the grant's time
        _event(9, e.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED, 1012),
        # Activity starts are written with their completions, stamped with the start time.
        _started(10, 8, 1014),
        _completed(11, 8, 1016),
        _started(12, 7, 1017),
        _completed(13, 7, 1041),
        _event(14, e.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, 1050),
        _event(15, e.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, 1060),
    ]
    assert history_figures(events)["redeem_phases_ms"] == {
        "update_task": 12.0,
        "grant_dispatch": 5.0,
        "grant_calls": 24.0,
        "closing": 19.0,
    }
    assert history_figures(events[:4])["redeem_phases_ms"] == {}  # never redeemed


async def test_first_steps_are_counted_and_reach_waits_for_the_count() -> None:
    steps = FirstSteps()
    waiting = asyncio.create_task(steps.reach(3))
    for _ in range(2):
        await steps.step()
        await asyncio.sleep(0)
    assert not waiting.done() and steps.count == 2
    await steps.step()
    await asyncio.wait_for(waiting, 1)
    await asyncio.wait_for(steps.reach(3), 1)  # already there: at once
