"""One way to reach Temporal for the API, the worker and the CLI: client factory and names."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import WorkflowAlreadyStartedError

from invites.ids import workflow_id
from invites.models import InvitationInput, InvitationState
from invites.settings import Settings

WORKFLOW_TYPE = "InvitationWorkflow"

STATUS = SearchAttributeKey.for_keyword("InvitationStatus")
EMAIL = SearchAttributeKey.for_keyword("InvitationEmail")
EXPIRES_AT = SearchAttributeKey.for_datetime("InvitationExpiresAt")
REF = SearchAttributeKey.for_keyword("InvitationRef")

# name -> type, as `temporal server start-dev --search-attribute` and
# `temporal operator search-attribute create` take them.
SEARCH_ATTRIBUTES = {
    "InvitationStatus": "Keyword",
    "InvitationEmail": "Keyword",
    "InvitationExpiresAt": "Datetime",
    "InvitationRef": "Keyword",
}


def auth0_task_queue(task_queue: str) -> str:
    """Auth0 activities run on their own queue so its per-second ceiling covers only them."""
    return f"{task_queue}-auth0"


async def build_temporal_client(settings: Settings) -> Client:
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=api_key,
        tls=settings.temporal_tls or api_key is not None,
        data_converter=pydantic_data_converter,
    )


def initial_search_attributes(inp: InvitationInput) -> TypedSearchAttributes:
    pairs = [
        SearchAttributePair(STATUS, "pending"),
        SearchAttributePair(EMAIL, inp.email.lower()),
        SearchAttributePair(EXPIRES_AT, inp.expires_at),
    ]
    if inp.external_ref:
        pairs.append(SearchAttributePair(REF, inp.external_ref))
    return TypedSearchAttributes(pairs)


def summary(inp: InvitationInput) -> str:
    """The one-line static summary the Temporal UI shows (no personal data in it)."""
    roles = ", ".join(inp.roles) or "no roles"
    ref = f", ref {inp.external_ref}" if inp.external_ref else ""
    return f"Invitation {inp.invitation_id} ({roles}{ref}), expires {inp.expires_at:%Y-%m-%d %H:%M} UTC"


async def start_invitation(
    client: Client, task_queue: str, inp: InvitationInput
) -> tuple[WorkflowHandle, bool]:
    """Start the invitation's workflow, or find the one already running under its id.

    Returns the handle and whether this call started it. A repeated create (same
    `external_ref` or `Idempotency-Key`, hence the same id) reaches the existing run; an id
    whose run has closed is not started again.
    """
    try:
        handle = await client.start_workflow(
            WORKFLOW_TYPE,
            inp,
            id=workflow_id(inp.invitation_id),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=initial_search_attributes(inp),
            static_summary=summary(inp),
            result_type=InvitationState,
        )
    except WorkflowAlreadyStartedError:
        return invitation_handle(client, inp.invitation_id), False
    return handle, True


def invitation_handle(client: Client, invitation_id: str) -> WorkflowHandle[Any, InvitationState]:
    return client.get_workflow_handle(workflow_id(invitation_id), result_type=InvitationState)
