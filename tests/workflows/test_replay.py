"""Determinism: today's workflow code must replay the recorded histories of invitations.

The histories in tests/histories/ are recorded from the main paths (`scripts/record-histories`).
A change to `InvitationWorkflow` that would break a running invitation (a new activity call, a
reordered timer) makes this test fail. Until the first release, such a change is made in place
and the histories re-recorded; after it, it goes behind `workflow.patched()` and the released
histories stay here (docs/design.md, "Changing the workflow").
"""

from __future__ import annotations

import json
from base64 import b64decode
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.invitation import InvitationWorkflow

HISTORIES = sorted((Path(__file__).parent.parent / "histories").rglob("*.json"))
MAIN_PATHS = {"accepted", "expired", "revoked", "undeliverable"}


def _path_of(history: Path) -> tuple[str, bool, bool]:
    """(final status, whether it published CRM events, whether a resend rotated the link)."""
    events = json.loads(history.read_text())["events"]
    completed = [e for e in events if e["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"]
    assert completed, f"{history.name} is not a completed invitation"
    result = completed[0]["workflowExecutionCompletedEventAttributes"]["result"]["payloads"][0]["data"]
    final = json.loads(b64decode(result))
    activities = {
        e["activityTaskScheduledEventAttributes"]["activityType"]["name"]
        for e in events
        if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"
    }
    return final["status"], "publish_event" in activities, final["generation"] > 0


def test_the_recorded_histories_cover_the_main_paths_with_and_without_a_crm():
    paths = {_path_of(history) for history in HISTORIES}
    assert {status for status, _, _ in paths} >= MAIN_PATHS
    assert {("accepted", True), ("accepted", False)} <= {(status, crm) for status, crm, _ in paths}
    assert any(rotated for _, _, rotated in paths), "no history of a resend with rotation"


def _commands(history: Path) -> set[str]:
    """The activities (local ones included) and signals one history holds."""
    names: set[str] = set()
    for event in json.loads(history.read_text())["events"]:
        if event["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED":
            names.add(event["activityTaskScheduledEventAttributes"]["activityType"]["name"])
        elif event["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED":
            names.add("signal " + event["workflowExecutionSignaledEventAttributes"]["signalName"])
        elif event["eventType"] == "EVENT_TYPE_MARKER_RECORDED":
            names.add("marker " + event["markerRecordedEventAttributes"]["markerName"])
    return names


def test_the_recorded_histories_cover_every_kind_of_run():
    """Provisioned invitations, the rollback run, delivery and opening signals, the funnel's
    local activity: each is in at least one recorded history."""
    seen = set().union(*(_commands(history) for history in HISTORIES))
    wanted = {
        "provision_and_invite",
        "remove_unused_account",
        "roll_back_grant",
        "signal delivery",
        "signal opened",
        "signal revoke",
        "signal resend",
        "marker core_local_activity",
    }
    assert wanted <= seen, f"no recorded history holds {sorted(wanted - seen)}"


@pytest.mark.parametrize("path", HISTORIES, ids=[f"{p.parent.name}/{p.stem}" for p in HISTORIES])
async def test_recorded_history_replays(path: Path):
    history = WorkflowHistory.from_json(f"invitation-{path.stem}", path.read_text())
    replayer = Replayer(workflows=[InvitationWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
