"""Undoing one acceptance (ops' rollback): the roles its grant assigned, its app_metadata
entries and our account link, each removed once.

What another accepted invitation of the same account also gives stays: a role it grants too,
a payload key it holds with the same value. Every part reads before it writes, so a retry
(the activity retries until it passes, like the grant) removes nothing twice.
"""

from __future__ import annotations

from temporalio import activity

from activities.auth0 import Auth0Users
from activities.heartbeat import heartbeating
from invites.db.store import Store
from invites.models import RollbackGrantInput, RollbackGrantResult
from invites.temporal import ROLLBACK_ACTIVITY


class RollbackActivities:
    def __init__(self, auth0: Auth0Users, store: Store):
        self._auth0 = auth0
        self._store = store

    @activity.defn(name=ROLLBACK_ACTIVITY)
    async def roll_back_grant(self, inp: RollbackGrantInput) -> RollbackGrantResult:
        async with heartbeating():
            others = await self._store.other_links(inp.user_id, inp.invitation_id)
            still_granted = {role for record in others for role in record.options.get("roles") or []}
            kept_payload: dict[str, object] = {}
            for record in others:
                kept_payload.update(record.app_metadata)
            to_remove = [role for role in inp.roles_assigned if role not in still_granted]
            removed = await self._auth0.remove_roles(inp.user_id, to_remove)
            metadata_removed = await self._auth0.remove_invitation_metadata(
                inp.user_id, inp.invitation_id, inp.app_metadata, kept_payload
            )
            # The link goes last: until Auth0 is done, a retry still sees this invitation's link
            # and the other links as they were.
            unlinked = await self._store.unlink_account(inp.invitation_id, inp.user_id)
        activity.logger.info(
            "grant rolled back",
            extra={"invitation_id": inp.invitation_id, "removed": removed, "unlinked": unlinked},
        )
        return RollbackGrantResult(
            removed=removed,
            kept=[role for role in inp.roles_assigned if role in still_granted],
            metadata_removed=metadata_removed,
            unlinked=unlinked,
        )
