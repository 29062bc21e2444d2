"""Database activities: the account link written when an invitation is accepted."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from invites.db.store import LinkConflict, Store
from invites.models import LinkAccountInput


class StoreActivities:
    def __init__(self, store: Store):
        self._store = store

    @activity.defn
    async def link_account(self, inp: LinkAccountInput) -> bool:
        """Associate the Auth0 account with the invitation's funnel data (idempotent)."""
        try:
            return await self._store.link_account(inp.invitation_id, inp.user_id, inp.email, inp.accepted_at)
        except LinkConflict as exc:
            # The workflow accepts one user only; a different one here means data was edited by hand.
            raise ApplicationError(str(exc), type="LinkConflict", non_retryable=True) from None
