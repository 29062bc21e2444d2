"""Database housekeeping, run by `workflows/maintenance.py` on a schedule."""

from __future__ import annotations

from temporalio import activity

from invites.db.store import Store


class MaintenanceActivities:
    def __init__(self, store: Store):
        self._store = store

    @activity.defn
    async def purge_webhook_receipts(self) -> int:
        """Delete the webhook receipts past their replay window; how many went."""
        purged = await self._store.purge_expired_webhooks()
        activity.logger.info("webhook receipts purged", extra={"purged": purged})
        return purged
