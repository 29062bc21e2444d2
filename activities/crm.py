"""CRM sync and events out: every transition goes to one backend.

- `hubspot`: upsert the contact (by email) with the invitation's status, the Auth0 user id and
  dates, through `hubspot-api-client` (one idempotent batch-upsert call).
- `webhook`: a Standard Webhooks-signed POST of the event (the generic CRM bridge). The
  `webhook-id` is derived from the event, so a retried delivery carries the same id and the
  receiver can drop duplicates.
- `none`: nothing leaves.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Protocol

import httpx
from hubspot import HubSpot
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    SimplePublicObjectBatchInputUpsert,
)
from hubspot.crm.contacts.exceptions import ApiException
from standardwebhooks import Webhook
from temporalio import activity

from activities.errors import http_error
from invites.models import InvitationEvent

# HubSpot contact properties we write. They must exist in the portal (see docs/operations.md).
HUBSPOT_PROPERTIES = ("invitation_id", "invitation_status", "auth0_user_id", "invitation_updated_at")


class CrmBackend(Protocol):
    async def publish(self, event: InvitationEvent) -> None: ...


class NoCrm:
    async def publish(self, event: InvitationEvent) -> None:
        return None


class HubSpotCrm:
    def __init__(self, client: HubSpot):
        self._contacts = client.crm.contacts.batch_api

    async def publish(self, event: InvitationEvent) -> None:
        properties = {
            "email": event.email,
            "invitation_id": event.invitation_id,
            "invitation_status": event.status.value,
            "invitation_updated_at": event.occurred_at.astimezone(UTC).isoformat(),
        }
        if event.user_id:
            properties["auth0_user_id"] = event.user_id
        batch = BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                SimplePublicObjectBatchInputUpsert(id=event.email, id_property="email", properties=properties)
            ]
        )
        try:
            await asyncio.to_thread(
                self._contacts.upsert, batch_input_simple_public_object_batch_input_upsert=batch
            )
        except ApiException as exc:
            raise http_error("HubSpot", exc.status, dict(exc.headers or {}), str(exc.reason)) from None
        except OSError as exc:  # urllib3 connection errors derive from OSError
            raise http_error("HubSpot", None, None, type(exc).__name__) from None


class WebhookCrm:
    def __init__(self, http: httpx.AsyncClient, url: str, secret: str):
        self._http, self._url, self._webhook = http, url, Webhook(secret)

    async def publish(self, event: InvitationEvent) -> None:
        body = event.model_dump_json()
        msg_id = f"{event.invitation_id}.{event.type}.{event.reminders_sent}"
        now = datetime.now(UTC).replace(microsecond=0)
        signature = self._webhook.sign(msg_id, now, body)
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        }
        try:
            response = await self._http.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise http_error("EventsWebhook", None, None, type(exc).__name__) from None
        if response.status_code >= 300:
            raise http_error("EventsWebhook", response.status_code, response.headers, response.text[:200])


class CrmActivities:
    def __init__(self, backend: CrmBackend):
        self._backend = backend

    @activity.defn
    async def publish_event(self, event: InvitationEvent) -> None:
        """Deliver one transition to the CRM (idempotent: an upsert, or a webhook with a stable id)."""
        await self._backend.publish(event)
        activity.logger.info(
            "event published", extra={"invitation_id": event.invitation_id, "type": event.type}
        )
