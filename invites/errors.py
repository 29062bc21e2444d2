"""Which failures mean a dependency is down: nothing was decided, and the same call may succeed
shortly. The API answers them 503 with `Retry-After`; the CLI exits 3; bulk import retries."""

from __future__ import annotations

import httpx
from auth0.management.core.api_error import ApiError as Auth0ApiError
from sqlalchemy.exc import OperationalError
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from invites.auth0 import Auth0TokenError

# RESOURCE_EXHAUSTED includes Temporal's limit of in-flight updates per workflow.
TRANSIENT_RPC = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.CANCELLED,
    }
)


def unavailable(exc: BaseException) -> str | None:
    """What did not answer, as a sentence, when `exc` says a dependency is down; None otherwise."""
    if isinstance(exc, RPCError) and exc.status in TRANSIENT_RPC:
        return f"Temporal did not answer ({exc.status.name}); try again shortly."
    if isinstance(exc, RPCTimeoutOrCancelledError):
        return "Temporal did not answer in time; try again shortly."
    if isinstance(exc, OperationalError):
        return f"The database did not answer ({type(exc.orig or exc).__name__}); try again shortly."
    if isinstance(exc, httpx.HTTPError | Auth0TokenError):
        return "Auth0 did not answer; try again shortly."
    if isinstance(exc, Auth0ApiError) and (exc.status_code or 500) in (429, *range(500, 600)):
        return f"Auth0 answered {exc.status_code}; try again shortly."
    return None
