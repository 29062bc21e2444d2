"""The funnel record: each transition of an invitation, written to our database.

The workflow runs `record_funnel` as a local activity: one marker event in history per stage,
where a regular activity costs three and a round trip through the server. The write is keyed
and records a stage only once (`invites/db/funnel.py`), so a retry or a replayed task that
runs it again changes nothing.
"""

from __future__ import annotations

from temporalio import activity

from invites.db.funnel import FunnelStore
from invites.models import FunnelFact


class FunnelActivities:
    def __init__(self, funnel: FunnelStore) -> None:
        self._funnel = funnel

    @activity.defn
    async def record_funnel(self, fact: FunnelFact) -> bool:
        """Record one stage of one invitation; False when it was recorded before."""
        return await self._funnel.record(fact)
