"""Determinism: today's workflow code must replay the histories of invitations already running.

The histories in tests/histories/ were recorded from the main paths (`./scripts/record-histories`);
the sub-folders keep histories of earlier workflow versions, which must keep replaying too.
A change to `InvitationWorkflow` that would break a running invitation (a new activity call, a
reordered timer) makes this test fail; version such changes (`workflows/invitation.py`,
"Versions": `workflow.patched()` or a new `InvitationInput.version`).
"""

from __future__ import annotations

import json
from base64 import b64decode
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from invites.models import WORKFLOW_VERSION
from workflows.invitation import InvitationWorkflow

HISTORIES = sorted((Path(__file__).parent.parent / "histories").rglob("*.json"))
MAIN_PATHS = {"accepted", "expired", "revoked", "undeliverable"}


def test_the_recorded_histories_cover_the_main_paths():
    ends = set()
    for path in HISTORIES:
        events = json.loads(path.read_text())["events"]
        completed = [e for e in events if e["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"]
        assert completed, f"{path.name} is not a completed invitation"
        result = completed[0]["workflowExecutionCompletedEventAttributes"]["result"]["payloads"][0]["data"]
        ends.add(json.loads(b64decode(result))["status"])
    assert ends >= MAIN_PATHS


def test_the_top_level_histories_show_the_version_new_invitations_get():
    """After a new version, re-record (scripts/record-histories) so its paths are covered too."""
    for path in (Path(__file__).parent.parent / "histories").glob("*.json"):
        started = json.loads(path.read_text())["events"][0]["workflowExecutionStartedEventAttributes"]
        inp = json.loads(b64decode(started["input"]["payloads"][0]["data"]))
        assert inp.get("version", 1) == WORKFLOW_VERSION, path.name


@pytest.mark.parametrize("path", HISTORIES, ids=[f"{p.parent.name}/{p.stem}" for p in HISTORIES])
async def test_recorded_history_replays(path: Path):
    history = WorkflowHistory.from_json(f"invitation-{path.stem}", path.read_text())
    replayer = Replayer(workflows=[InvitationWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
