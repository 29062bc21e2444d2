"""Reading a run's history in tests: which activities it ran, local ones included."""

from __future__ import annotations

import json
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

LOCAL_ACTIVITY_MARKER = "core_local_activity"


def local_activity_markers(events: list[HistoryEvent]) -> list[dict[str, Any]]:
    """What each local activity's marker says of it (`activity_type`, `attempt`, ...), in order."""
    return [
        json.loads(e.marker_recorded_event_attributes.details["data"].payloads[0].data)
        for e in events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and e.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
    ]


def local_activities(events: list[HistoryEvent]) -> list[str]:
    """The activity type of each local activity the run recorded, in order (one marker each)."""
    return [marker["activity_type"] for marker in local_activity_markers(events)]


def scheduled_activities(events: list[HistoryEvent]) -> list[tuple[str, str]]:
    """(activity type, task queue) of each activity the run scheduled, in order."""
    return [
        (
            e.activity_task_scheduled_event_attributes.activity_type.name,
            e.activity_task_scheduled_event_attributes.task_queue.name,
        )
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
