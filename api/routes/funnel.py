"""POST /v1/invitations: the funnel invites a person."""

from __future__ import annotations

from typing import Annotated

from auth0.management.core.api_error import ApiError as Auth0ApiError
from fastapi import APIRouter, Header, Response
from httpx import HTTPError

from api.deps import CreatorDep, ServicesDep
from api.errors import unavailable
from invites.schemas import ErrorBody, InvitationCreate, InvitationPublic

router = APIRouter(tags=["funnel"])

IDEMPOTENCY_KEY_MAX = 200


@router.post(
    "/v1/invitations",
    status_code=201,
    response_model=InvitationPublic,
    responses={
        200: {
            "model": InvitationPublic,
            "description": "The same request was made before: the same invitation.",
        },
        409: {"model": ErrorBody, "description": "`idempotency_conflict`: same key or ref, different body."},
        422: {
            "model": ErrorBody,
            "description": "`invalid_request`, `unknown_role`, or `role_not_grantable` (a role outside "
            "INVITES_GRANTABLE_ROLES); nothing is created.",
        },
    },
)
async def create_invitation(
    body: InvitationCreate,
    response: Response,
    services: ServicesDep,
    _: CreatorDep,
    idempotency_key: Annotated[str | None, Header(max_length=IDEMPOTENCY_KEY_MAX)] = None,
) -> InvitationPublic:
    """Invite a person: stores the funnel data and starts the invitation's workflow.

    Repeating the request with the same `external_ref` (or `Idempotency-Key` header) answers 200
    with the same invitation; the same key with a different body is a 409.
    """
    try:
        outcome = await services.creator.create(body, idempotency_key)
    except (Auth0ApiError, HTTPError):
        raise unavailable("Auth0") from None
    if not outcome.created:
        response.status_code = 200
    return InvitationPublic.from_state(outcome.state)
