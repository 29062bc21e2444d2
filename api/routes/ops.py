"""Ops: read, list and steer invitations (`read:invitations`, `manage:invitations`).

The routes let the core's refusals (an unknown id, an ended invitation, ...) propagate: the app
answers them through one table, `api.errors.refusal`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from datetime import UTC, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from api.deps import ManagerDep, ReaderDep, ServicesDep
from api.errors import ApiError, unavailable
from invites import invitations, rollback, steering
from invites.ids import ID_PATTERN
from invites.invitations import get_state, list_query
from invites.models import Status
from invites.schemas import (
    SAFE_TEXT,
    ErrorBody,
    ExtendRequest,
    InvitationPage,
    InvitationPublic,
    ResendRequest,
    RevokeRequest,
    RollbackRequest,
)

router = APIRouter(prefix="/v1/invitations", tags=["ops"])

InvitationId = Annotated[str, Path(pattern=ID_PATTERN.pattern, examples=["inv_01JD0Z3Q6W7N9V4X2B8C5M1K0T"])]
NOT_FOUND = {404: {"model": ErrorBody, "description": "No such invitation"}}
REFUSED = {409: {"model": ErrorBody, "description": "`already_redeemed`: the invitation was accepted"}}
GONE_RESPONSE = {
    410: {
        "model": ErrorBody,
        "description": "The invitation has ended: `expired`, `revoked`, `undeliverable`",
    }
}
STEERED = {**NOT_FOUND, **REFUSED, **GONE_RESPONSE}
PAGE_MAC = 16  # bytes of HMAC-SHA256 on each page token


@router.get("/{invitation_id}", response_model=InvitationPublic, responses=NOT_FOUND)
async def get_invitation(
    invitation_id: InvitationId, services: ServicesDep, _: ReaderDep
) -> InvitationPublic:
    """The invitation's current state (from its workflow)."""
    return InvitationPublic.from_state(await get_state(services.temporal, invitation_id))


@router.get("", response_model=InvitationPage)
async def list_invitations(
    services: ServicesDep,
    _: ReaderDep,
    status: Status | None = None,
    email: Annotated[str | None, Query(pattern=SAFE_TEXT, max_length=320)] = None,
    ref: Annotated[str | None, Query(pattern=SAFE_TEXT, max_length=128)] = None,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
    page_token: Annotated[str | None, Query(max_length=4096)] = None,
) -> InvitationPage:
    """Invitations from Temporal visibility, filtered by status, email or ref, in its order:
    pending invitations first, newest first, then ended ones, the most recently ended first.
    Visibility cannot sort otherwise across pages (`ORDER BY` is refused on SQL visibility);
    sort the items by `created_at` after fetching every page you need."""
    query = list_query(services.settings, status.value if status else None, email, ref)
    keys = [key for _, key in services.settings.token_keyring]
    token = _open_page_token(keys, query, page_token) if page_token else None
    page = services.temporal.list_workflows(query, page_size=page_size, next_page_token=token)
    await page.fetch_next_page()  # exactly one page per request
    current = await invitations.latest_runs(services.temporal, list(page.current_page or []))
    items = [invitations.listed(execution) for execution in current]
    next_token = page.next_page_token
    return InvitationPage(
        items=items, next_page_token=_seal_page_token(keys[0], query, next_token) if next_token else None
    )


@router.post(
    "/{invitation_id}/revoke",
    response_model=InvitationPublic,
    responses={
        **STEERED,
        202: {"model": InvitationPublic, "description": "Revocation sent; the workflow applies it shortly"},
    },
)
async def revoke_invitation(
    invitation_id: InvitationId,
    body: RevokeRequest,
    response: Response,
    services: ServicesDep,
    _: ManagerDep,
) -> InvitationPublic:
    """Withdraw a pending invitation; its link stops working.

    202 when the workflow has not applied the revocation yet (it will: the signal is durable).
    """
    state = await steering.revoke(services.temporal, invitation_id, body.reason)
    if state.status == Status.PENDING:
        response.status_code = 202
    return InvitationPublic.from_state(state)


@router.post(
    "/{invitation_id}/resend",
    status_code=202,
    response_model=InvitationPublic,
    responses=STEERED,
)
async def resend_invitation(
    invitation_id: InvitationId, body: ResendRequest, services: ServicesDep, _: ManagerDep
) -> InvitationPublic:
    """Send the invitation mail again; `rotate: true` makes earlier links answer `stale_link`."""
    state = await steering.resend(services.temporal, invitation_id, body.rotate)
    return InvitationPublic.from_state(state)


@router.post(
    "/{invitation_id}/extend",
    response_model=InvitationPublic,
    responses={
        **STEERED,
        422: {
            "model": ErrorBody,
            "description": "`invalid_request`, or `invalid_expiry`: past or beyond 90 days",
        },
    },
)
async def extend_invitation(
    invitation_id: InvitationId, body: ExtendRequest, services: ServicesDep, _: ManagerDep
) -> InvitationPublic:
    """Move a pending invitation's expiry (at most 90 days from now)."""
    expires_at = body.expires_at or await services.clock() + timedelta(seconds=body.expires_in or 0)
    state = await invitations.extend(services.temporal, invitation_id, expires_at.astimezone(UTC))
    return InvitationPublic.from_state(state)


@router.post(
    "/{invitation_id}/rollback",
    response_model=InvitationPublic,
    responses={
        **NOT_FOUND,
        **GONE_RESPONSE,
        202: {"model": InvitationPublic, "description": "Under way; the workflow finishes it durably"},
        409: {"model": ErrorBody, "description": "`not_accepted`: the invitation is pending (revoke it)"},
        503: {"model": ErrorBody, "description": "The acceptance is still granting; retry shortly"},
    },
)
async def rollback_invitation(
    invitation_id: InvitationId,
    body: RollbackRequest,
    response: Response,
    services: ServicesDep,
    _: ManagerDep,
) -> InvitationPublic:
    """Undo a wrong acceptance: remove the roles its grant assigned (not roles the account held
    before, nor roles another of its accepted invitations gives), its `app_metadata` entries and
    the link to the funnel data; the invitation ends `revoked` with the reason.

    Idempotent: asking again answers with the same rollback. 202 while it is still under way.
    """
    queue = services.settings.task_queue
    try:
        state = await rollback.roll_back(services.temporal, queue, invitation_id, body.reason)
    except invitations.InvitationBusy:
        raise unavailable("The invitation, still granting,") from None
    if state.rollback == "pending":
        response.status_code = 202
    return InvitationPublic.from_state(state)


@router.post(
    "/{invitation_id}/reissue",
    status_code=201,
    response_model=InvitationPublic,
    responses={
        **NOT_FOUND,
        200: {"model": InvitationPublic, "description": "Reissued before: the same new invitation"},
        409: {"model": ErrorBody, "description": "`not_reissuable`: the invitation is pending or accepted"},
    },
)
async def reissue_invitation(
    invitation_id: InvitationId, response: Response, services: ServicesDep, _: ManagerDep
) -> InvitationPublic:
    """A new invitation with the same data for an expired, revoked or undeliverable one.

    Idempotent: reissuing the same invitation again answers 200 with the same new invitation.
    """
    reissued = await services.creator.reissue(invitation_id)
    if not reissued.created:
        response.status_code = 200
    return InvitationPublic.from_state(reissued.state)


def _page_mac(key: bytes, query: str, token: bytes) -> bytes:
    return hmac.digest(key, b"invites/page-token\x00" + query.encode() + b"\x00" + token, "sha256")[:PAGE_MAC]


def _seal_page_token(key: bytes, query: str, token: bytes) -> str:
    """Temporal's page token, MACed with the query it continues."""
    return base64.urlsafe_b64encode(_page_mac(key, query, token) + token).decode()


def _open_page_token(keys: list[bytes], query: str, sealed: str) -> bytes:
    """Only a token this API issued for the same filters reaches Temporal: the server answers
    a foreign one with an opaque error that its client retries for seconds."""
    try:
        raw = base64.urlsafe_b64decode(sealed)
    except (binascii.Error, ValueError):
        raw = b""
    mac, token = raw[:PAGE_MAC], raw[PAGE_MAC:]
    if token and any(hmac.compare_digest(mac, _page_mac(key, query, token)) for key in keys):
        return token
    raise ApiError(
        422,
        "invalid_request",
        "page_token is not one this API returned for these filters; start again without it.",
    )
