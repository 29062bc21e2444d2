"""The webhook's answer on the real dev server, where the API follows the run's history: `done`
as soon as `grant_access` completes, so a login never waits for the CRM or the run's end; a
grant that fails for good is answered from the run's end. (Temporal's time-skipping test server
cannot follow a running history: the run's end answers there, as the workflow tests show.)
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from invites.invitations import handle_for
from sandbox.hubspot_api import BATCH_UPSERT
from tests.support.api import api_for
from tests.support.auth0 import account
from tests.support.stack import Stack

pytestmark = [pytest.mark.devserver]


async def _sent(s: Stack, api: Any, email: str) -> tuple[str, WorkflowHandle[Any, Any]]:
    """An invitation created through the API, its first mail out: its id and handle."""
    invitation_id = (await api.created(email, roles=["customer"]))["id"]
    handle = handle_for(s.client, invitation_id)
    await s.sent(handle)
    return invitation_id, handle


async def test_a_crm_outage_does_not_hold_the_login_and_the_sync_follows(dev_stack: Stack):
    s = dev_stack
    email = f"crm-down.{uuid.uuid4().hex[:8]}@example.com"
    async with api_for(s) as api, s.worker():
        invitation_id, handle = await _sent(s, api, email)
        async with asyncio.timeout(30):  # the "sent" event is in the CRM: the run waits for a login
            while (await handle.describe()).raw_description.pending_activities:
                await asyncio.sleep(0.05)
        s.hubspot.faults.status(BATCH_UPSERT, 503, times=1000)
        user = account(s.auth0, email, email_verified=True)

        response = await api.delivery(s.links(email)[-1], user).send(api.http)

        assert response.status_code == 200, response.text
        assert (response.json()["result"], response.json()["grant"]) == ("accepted", "done")
        assert s.auth0.role_names(user["user_id"]) == ["customer"]
        links = await s.store.links_for_user(user["user_id"])
        assert [link.invitation_id for link in links] == [invitation_id]
        # The run is still publishing the acceptance to the CRM, which refuses it.
        async with asyncio.timeout(30):
            while not s.hubspot.faults.count(BATCH_UPSERT, status=503):
                await asyncio.sleep(0.05)
        description = await handle.describe()
        assert description.status == WorkflowExecutionStatus.RUNNING
        pending = description.raw_description.pending_activities
        assert [a.activity_type.name for a in pending] == ["publish_event"]
        assert (await s.state(handle)).grant == "done"

        s.hubspot.faults.reset()
        async with asyncio.timeout(60):
            final = await handle.result()
        assert (final.status, final.grant) == ("accepted", "done")
        contact = s.hubspot.contact_by_email(email)
        assert contact is not None and contact["properties"]["invitation_status"] == "accepted"


async def test_a_grant_that_fails_for_good_is_answered_failed(dev_stack: Stack):
    """The account was deleted before the grant: `grant_access` fails for good (no completion
    to follow), the run ends with the grant failed, and that is the answer."""
    s = dev_stack
    email = f"gone.{uuid.uuid4().hex[:8]}@example.com"
    async with api_for(s) as api, s.worker():
        _, handle = await _sent(s, api, email)
        ghost = {"user_id": "auth0|deleted-before-the-grant", "email": email, "email_verified": True}

        response = await api.delivery(s.links(email)[-1], ghost).send(api.http)

        assert response.status_code == 200, response.text
        assert (response.json()["result"], response.json()["grant"]) == ("accepted", "failed")
        final = await handle.result()
        assert (final.status, final.grant) == ("accepted", "failed")
