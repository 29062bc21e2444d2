"""GET /v1/me: the customer space reads the invitations linked to the signed-in account."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import PrincipalDep, ServicesDep
from api.errors import ApiError
from invites.schemas import ErrorBody, LinkedInvitationPublic, Me

router = APIRouter(tags=["customer space"])


@router.get(
    "/v1/me",
    response_model=Me,
    responses={
        403: {"model": ErrorBody, "description": "`forbidden`: an API key, not a user's access token"},
    },
)
async def me(principal: PrincipalDep, services: ServicesDep) -> Me:
    """The caller's linked invitations, the roles they granted and the funnel data they carry
    (only the caller's). `roles` gathers every accepted invitation's roles: an account invited
    twice holds the roles of both."""
    if principal.kind != "user" or not principal.subject:
        raise ApiError(403, "forbidden", "This route needs a user's access token, not an API key.")
    links = await services.store.links_for_user(principal.subject)
    return Me(
        user_id=principal.subject,
        roles=sorted({role for link in links for role in link.roles}),
        invitations=[LinkedInvitationPublic.model_validate(link, from_attributes=True) for link in links],
    )
