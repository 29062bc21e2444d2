"""Finding invitations in Temporal visibility by their search attributes (real dev server).

The production worker wiring (`build_activities` + `build_workers`) runs in-process against
the fakes; the queries are the ones SPEC §3 promises work in the Temporal UI.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from invites.models import Status
from invites.temporal import EMAIL, EXPIRES_AT, REF, STATUS
from tests.support.auth0 import user_payload
from tests.support.stack import Stack
from tests.support.temporal import listed

pytestmark = pytest.mark.devserver


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_accepted_and_pending_invitations_are_found_by_search_attributes(dev_stack: Stack):
    s, client = dev_stack, dev_stack.env.client
    tag = uuid.uuid4().hex[:10]
    invited_as = f"Ada.{tag}@Example.com"  # the attribute is lower-cased; the query uses that form
    email, ref = invited_as.lower(), f"crm-{tag}"
    queue = f'TaskQueue="{s.settings.task_queue}"'

    async with s.worker():
        accepted = await s.invite(invited_as, roles=("customer", "member"), external_ref=ref)
        pending = await s.invite(f"bob.{tag}@example.com", expires_in=timedelta(days=30))
        await s.sent(accepted)
        await s.sent(pending)

        user = s.auth0.create_user(email)  # signs up from the link
        result = await s.redeem(accepted, user_payload(s.auth0, email))
        assert (result.result, result.grant) == ("accepted", "done")
        final = await accepted.result()
        assert final.status == Status.ACCEPTED
        assert final.accepted_by == user["user_id"]

        await listed(client, f'InvitationStatus="accepted" AND InvitationEmail="{email}"', {accepted.id})
        # The UI's "live invitations" view: the second one, not the accepted one.
        await listed(client, f'InvitationStatus="pending" AND {queue}', {pending.id})
        await listed(client, f'InvitationRef="{ref}"', {accepted.id})
        # Indexed as Datetime: a range query tells the 14-day invitation from the 30-day one.
        cutoff = final.expires_at + timedelta(days=1)
        await listed(client, f'InvitationExpiresAt < "{rfc3339(cutoff)}" AND {queue}', {accepted.id})
        await listed(client, f'InvitationExpiresAt > "{rfc3339(cutoff)}" AND {queue}', {pending.id})

        described = await accepted.describe()
        attrs = described.typed_search_attributes
        assert attrs.get(STATUS) == "accepted"
        assert attrs.get(EMAIL) == email
        assert attrs.get(REF) == ref
        assert attrs.get(EXPIRES_AT) == final.expires_at
        assert (await pending.describe()).typed_search_attributes.get(STATUS) == "pending"

        summary = await described.static_summary()
        assert summary is not None
        assert summary.startswith(f"Invitation {final.invitation_id} (customer, member, ref {ref}), expires ")
        assert email not in summary.lower()  # the UI summary carries no personal data
