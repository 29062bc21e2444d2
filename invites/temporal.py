"""One way to reach Temporal for the API, the worker and the CLI: client factory and names."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.service import RetryConfig

from invites.codec import build_data_converter
from invites.settings import Settings

WORKFLOW_TYPE = "InvitationWorkflow"
# The activity that grants access on acceptance: a redeem's answer waits for its completion in
# the run's history (invites.invitations).
GRANT_ACTIVITY = "grant_access"
ROLLBACK_ACTIVITY = "roll_back_grant"

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


async def build_temporal_client(
    settings: Settings, *, lazy: bool = False, retry_config: RetryConfig | None = None
) -> Client:
    """`lazy=True` (the API) connects on first use, so the API starts and answers 503 while
    Temporal is down; the worker connects eagerly and fails fast."""
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=api_key,
        tls=settings.temporal_tls or api_key is not None,
        data_converter=build_data_converter(settings),
        lazy=lazy,
        retry_config=retry_config,
    )
