"""The worker's housekeeping on the real dev server: a Temporal Schedule ops can see, pause and
trigger, whose runs delete the webhook receipts past their replay window."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus

from tests.support.stack import Stack
from worker import ensure_schedules, purge_schedule_id
from workflows.maintenance import PURGE_EVERY

pytestmark = pytest.mark.devserver


async def test_the_worker_schedules_the_receipt_purge_once_and_its_runs_delete_only_expired_receipts(
    dev_stack: Stack,
):
    s = dev_stack
    now = datetime.now(UTC)
    answer, ttl = {"result": "accepted"}, timedelta(days=1)
    await s.store.remember_webhook("msg_old", 200, answer, ttl, now=now - timedelta(days=2))
    await s.store.remember_webhook("msg_new", 200, answer, ttl, now=now)
    schedule = s.client.get_schedule_handle(purge_schedule_id(s.settings.task_queue))
    try:
        async with s.worker():
            await ensure_schedules(s.client, s.settings)
            await ensure_schedules(s.client, s.settings)  # every worker tries: the first wins
            description = await schedule.describe()
            assert description.schedule.spec.intervals[0].every == PURGE_EVERY
            assert description.schedule.action.task_queue == s.settings.task_queue

            await schedule.trigger()  # as ops do from the UI
            async with asyncio.timeout(30):
                while not (recent := (await schedule.describe()).info.recent_actions):
                    await asyncio.sleep(0.2)
                run = s.client.get_workflow_handle(
                    recent[0].action.workflow_id, run_id=recent[0].action.first_execution_run_id
                )
                assert await run.result() == 1
            assert (await run.describe()).status == WorkflowExecutionStatus.COMPLETED
        assert await s.store.get_webhook("msg_old", now=now) is None
        assert await s.store.get_webhook("msg_new", now=now) is not None
    finally:
        await schedule.delete()
