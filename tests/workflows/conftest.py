"""Workflow tests run a whole worker (`tests.support.stack`) on the time-skipping server.

Tests marked `record_history` keep their closed workflows' histories for the replay test when
`INVITES_RECORD_HISTORIES` is set (`scripts/record-histories`).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from tests.support.stack import Stack, open_stack, terminate_open

HISTORIES = Path(__file__).parent.parent / "histories"


@pytest.fixture
async def stack(
    ts_env: WorkflowEnvironment,
    tmp_path: Path,
    settings_overrides: dict[str, Any],
    request: pytest.FixtureRequest,
) -> AsyncIterator[Stack]:
    async with open_stack(ts_env, tmp_path, settings_overrides) as s:
        yield s
        if os.environ.get("INVITES_RECORD_HISTORIES") and request.node.get_closest_marker("record_history"):
            await record_histories(s, request.node.name)
        await terminate_open(s)


async def record_histories(stack: Stack, name: str) -> None:
    """Keep the histories of a test's closed workflows for the replay test (tests/histories/)."""
    for index, started in enumerate(stack.handles):
        # The run this handle started (a later run under the same id, a rollback, is its own).
        handle = stack.client.get_workflow_handle(started.id, run_id=started.run_id or started.result_run_id)
        if (await handle.describe()).status != WorkflowExecutionStatus.COMPLETED:
            continue  # only complete histories are kept
        history = await handle.fetch_history()
        stem = re.sub(r"\W+", "-", name.removeprefix("test_")).strip("-")
        (HISTORIES / f"{stem}-{index}.json").write_text(history.to_json())
