"""Ops: read, list and steer invitations (`read:invitations`, `manage:invitations`)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, timedelta
from typing import Annotated, TypeVar

from fastapi import APIRouter, Path, Query, Response

from api.deps import ManagerDep, ReaderDep, ServicesDep
from api.errors import ApiError
from api.services import Services
from invites import invitations
from invites.creation import MissingFunnelData, NotReissuable
from invites.ids import ID_PATTERN
from invites.invitations import InvitationNotFound, InvitationRejected, get_state, list_query
from invites.models import InvitationState, Reason, Status
from invites.schemas import (
    SAFE_TEXT,
    ErrorBody,
    ExtendRequest,
    InvitationPage,
    InvitationPublic,
    ResendRequest,
    RevokeRequest,
)

router = APIRouter(prefix="/v1/invitations", tags=["ops"])
T = TypeVar("T")

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
SETTLE_WAIT_S = 2.0
PAGE_MAC = 16  # bytes of HMAC-SHA256 on each page token
GONE = {Reason.EXPIRED.value, Reason.REVOKED.value, Reason.UNDELIVERABLE.value, Reason.STALE_LINK.value}
ENDED = {
    Status.ACCEPTED: Reason.ALREADY_REDEEMED.value,
    Status.EXPIRED: Reason.EXPIRED.value,
    Status.REVOKED: Reason.REVOKED.value,
    Status.UNDELIVERABLE: Reason.UNDELIVERABLE.value,
}


@router.get("/{invitation_id}", response_model=InvitationPublic, responses=NOT_FOUND)
async def get_invitation(
    invitation_id: InvitationId, services: ServicesDep, _: ReaderDep
) -> InvitationPublic:
    """The invitation's current state (from its workflow)."""
    return InvitationPublic.from_state(await _state(services, invitation_id))


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
    """Invitations from Temporal visibility, newest first, filtered by status, email or ref."""
    query = list_query(services.settings, status.value if status else None, email, ref)
    keys = [key for _, key in services.settings.token_keyring]
    token = _open_page_token(keys, query, page_token) if page_token else None
    page = services.temporal.list_workflows(query, page_size=page_size, next_page_token=token)
    await page.fetch_next_page()  # exactly one page per request
    items = [invitations.listed(execution) for execution in page.current_page or []]
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
    _only_pending(await _state(services, invitation_id), "revoked")
    await _refusals(invitations.revoke(services.temporal, invitation_id, body.reason))
    state = await _settled(services, invitation_id, lambda s: s.status != Status.PENDING)
    if state.status == Status.PENDING:
        response.status_code = 202
    elif state.status != Status.REVOKED:  # accepted or expired in the meantime
        _only_pending(state, "revoked")
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
    before = _only_pending(await _state(services, invitation_id), "resent")
    await _refusals(invitations.resend(services.temporal, invitation_id, body.rotate))
    state = await _settled(
        services, invitation_id, lambda s: s.mails_sent > before.mails_sent or s.status != Status.PENDING
    )
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
    state = await _refusals(invitations.extend(services.temporal, invitation_id, expires_at.astimezone(UTC)))
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
    try:
        reissued = await services.creator.reissue(invitation_id)
    except InvitationNotFound:
        raise ApiError(404, "not_found", f"No invitation {invitation_id}.") from None
    except NotReissuable as exc:
        raise ApiError(409, "not_reissuable", str(exc)) from None
    except MissingFunnelData as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    if not reissued.created:
        response.status_code = 200
    return InvitationPublic.from_state(reissued.state)


async def _state(services: Services, invitation_id: str) -> InvitationState:
    try:
        return await get_state(services.temporal, invitation_id)
    except InvitationNotFound:
        raise ApiError(404, "not_found", f"No invitation {invitation_id}.") from None


async def _refusals(call: Awaitable[T]) -> T:
    """Await an operation, mapping its typed refusals to 404 / 409 / 410 / 422."""
    try:
        return await call
    except InvitationNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except InvitationRejected as rejected:
        if rejected.reason == Reason.INVALID_EXPIRY:
            raise ApiError(422, rejected.reason, str(rejected)) from None
        status = 410 if rejected.reason in GONE else 409
        raise ApiError(status, rejected.reason, str(rejected)) from None


async def _settled(
    services: Services, invitation_id: str, done: Callable[[InvitationState], bool]
) -> InvitationState:
    """Signals are asynchronous: give the workflow a moment to apply one before answering."""
    deadline = asyncio.get_running_loop().time() + SETTLE_WAIT_S
    while True:
        state = await _state(services, invitation_id)
        if done(state) or asyncio.get_running_loop().time() >= deadline:
            return state
        await asyncio.sleep(0.1)


def _only_pending(state: InvitationState, verb: str) -> InvitationState:
    """Refuse an operation on an ended invitation with its reason code, as its messages do."""
    if state.status == Status.PENDING:
        return state
    reason = ENDED[state.status]
    hint = "." if state.status == Status.ACCEPTED else "; reissue it to invite the person again."
    raise ApiError(
        410 if reason in GONE else 409,
        reason,
        f"The invitation is {state.status.value}, so it cannot be {verb}{hint}",
    )


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
