"""Housekeeping the worker schedules for itself, so ops see it (and its runs) in the Temporal UI.

`PurgeWebhookReceiptsWorkflow` deletes the webhook receipts whose replay window has passed
(`INVITES_WEBHOOK_RECEIPT_TTL`); the worker keeps a Temporal Schedule,
`purge-webhook-receipts-<task queue>`, that starts it every PURGE_EVERY (`worker.ensure_schedules`).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.maintenance import MaintenanceActivities

PURGE_EVERY = timedelta(hours=1)
PURGE_TIMEOUT = timedelta(minutes=5)
PURGE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=10), maximum_attempts=5)


@workflow.defn
class PurgeWebhookReceiptsWorkflow:
    @workflow.run
    async def run(self) -> int:
        """How many receipts went."""
        return await workflow.execute_activity_method(
            MaintenanceActivities.purge_webhook_receipts,
            start_to_close_timeout=PURGE_TIMEOUT,
            retry_policy=PURGE_RETRY,
        )
