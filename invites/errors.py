"""What a failure means to whoever asked, shared by the API, the CLI and bulk import.

- `refused`: the core's typed refusals, as a reason code and a sentence (the API adds the HTTP
  status; the CLI prints them and exits 2; bulk import reports the row).
- `unavailable`: a dependency is down, nothing was decided, and the same call may succeed
  shortly (the API answers 503 with `Retry-After`; the CLI exits 3; bulk import retries).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from auth0.management.core.api_error import ApiError as Auth0ApiError
from sqlalchemy.exc import OperationalError
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from invites.auth0 import Auth0TokenError, UnknownRoles
from invites.creation import IdempotencyConflict, MissingFunnelData, NotReissuable, RolesNotGrantable
from invites.invitations import InvitationBusy, InvitationNotFound, InvitationRejected

# RESOURCE_EXHAUSTED includes Temporal's limit of in-flight updates per workflow.
TRANSIENT_RPC = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.CANCELLED,
    }
)


@dataclass(frozen=True)
class Refusal:
    code: str  # a reason code of invites.models.Reason, or not_found, not_reissuable, ...
    message: str


# The core's typed refusals: each has an answer in `refused`.
REFUSALS = (
    InvitationNotFound,
    InvitationRejected,
    NotReissuable,
    MissingFunnelData,
    UnknownRoles,
    RolesNotGrantable,
    IdempotencyConflict,
)


def refused(exc: BaseException) -> Refusal | None:
    """The reason code and sentence of one of REFUSALS; None for anything else."""
    if isinstance(exc, InvitationNotFound):
        return Refusal("not_found", f"No invitation {exc.invitation_id}.")
    if isinstance(exc, InvitationRejected):
        return Refusal(exc.reason, str(exc))
    if isinstance(exc, UnknownRoles):
        return Refusal("unknown_role", f"{exc}; use role names that exist in the tenant.")
    if isinstance(exc, RolesNotGrantable):
        return Refusal(
            "role_not_grantable",
            f"{exc}; invitations grant only the roles in INVITES_GRANTABLE_ROLES.",
        )
    if isinstance(exc, IdempotencyConflict):
        return Refusal("idempotency_conflict", str(exc))
    if isinstance(exc, NotReissuable):
        return Refusal("not_reissuable", str(exc))
    if isinstance(exc, MissingFunnelData):
        return Refusal("not_found", str(exc))
    return None


def unavailable(exc: BaseException) -> str | None:
    """What did not answer, as a sentence, when `exc` says a dependency is down; None otherwise."""
    if isinstance(exc, RPCError) and exc.status in TRANSIENT_RPC:
        return f"Temporal did not answer ({exc.status.name}); try again shortly."
    if isinstance(exc, RPCTimeoutOrCancelledError):
        return "Temporal did not answer in time; try again shortly."
    if isinstance(exc, InvitationBusy):
        return f"{exc}."
    if isinstance(exc, OperationalError):
        return f"The database did not answer ({type(exc.orig or exc).__name__}); try again shortly."
    if isinstance(exc, httpx.HTTPError | Auth0TokenError):
        return "Auth0 did not answer; try again shortly."
    if isinstance(exc, Auth0ApiError) and (exc.status_code or 500) in (429, *range(500, 600)):
        return f"Auth0 answered {exc.status_code}; try again shortly."
    return None
