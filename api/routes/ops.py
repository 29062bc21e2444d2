"""Ops: read, list and steer invitations (`read:invitations`, `manage:invitations`)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, TypeVar

from fastapi import APIRouter, Path, Query, Response
from temporalio.client import WorkflowExecution

from api.deps import ManagerDep, ReaderDep, ServicesDep
from api.errors import ApiError
from api.services import Services
from invites import invitations
from invites import temporal as names
from invites.db.records import InvitationRecord
from invites.ids import ID_PATTERN, id_from_bytes
from invites.invitations import InvitationNotFound, InvitationRejected, get_state, start_invitation
from invites.models import InvitationInput, InvitationState, Reason, Status
from invites.redemption import MAX_LIFETIME
from invites.schemas import (
    SAFE_TEXT,
    ErrorBody,
    ExtendRequest,
    InvitationPage,
    InvitationPublic,
    InvitationSummary,
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
    clauses = [f'WorkflowType="{names.WORKFLOW_TYPE}"']
    if status:
        clauses.append(f'InvitationStatus="{status.value}"')
    if email:
        clauses.append(f'InvitationEmail="{email.strip().lower()}"')
    if ref:
        clauses.append(f'InvitationRef="{ref}"')
    query = " AND ".join(clauses)
    keys = [key for _, key in services.settings.token_keyring]
    token = _open_page_token(keys, query, page_token) if page_token else None
    page = services.temporal.list_workflows(query, page_size=page_size, next_page_token=token)
    await page.fetch_next_page()  # exactly one page per request
    items = [_summary(execution) for execution in page.current_page or []]
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
    expires_at = body.expires_at or datetime.now(UTC) + timedelta(seconds=body.expires_in or 0)
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
    old = await _state(services, invitation_id)
    if old.status in (Status.PENDING, Status.ACCEPTED):
        raise ApiError(
            409, "not_reissuable", f"Only ended invitations can be reissued; this one is {old.status}."
        )
    record = await services.store.get_invitation(invitation_id)
    if record is None:
        raise ApiError(404, "not_found", "The invitation's funnel data is missing from the database.")
    new_id = _reissue_id(invitation_id)
    now = datetime.now(UTC)
    saved = await services.store.save_invitation(
        InvitationRecord(
            id=new_id,
            email=record.email,
            data=record.data,
            app_metadata=record.app_metadata,
            request_hash=record.request_hash,
            created_at=now,
            reissued_from=invitation_id,
        )
    )
    stored = await services.store.get_invitation(saved.invitation_id)
    created_at = stored.created_at if stored else now
    inp = InvitationInput(
        invitation_id=new_id,
        email=old.email,
        roles=old.roles,
        app_metadata=record.app_metadata,
        # The funnel's ref stays with the old invitation in the database (it names that id);
        # the new workflow carries it so ops and the CRM find both under it.
        external_ref=old.external_ref,
        created_at=created_at,
        # The old lifetime, extensions included, within the 90-day ceiling.
        expires_at=created_at + min(old.expires_at - old.created_at, MAX_LIFETIME),
        reminders=[int(r.total_seconds()) for r in services.settings.default_reminders],
        email_policy=old.email_policy,
        reissued_from=invitation_id,
    )
    _, started = await start_invitation(services.temporal, services.settings.task_queue, inp)
    if not started:
        response.status_code = 200
        return InvitationPublic.from_state(await _state(services, new_id))
    return InvitationPublic.from_state(
        InvitationState(
            invitation_id=new_id,
            email=inp.email,
            roles=inp.roles,
            external_ref=inp.external_ref,
            created_at=inp.created_at,
            expires_at=inp.expires_at,
            email_policy=inp.email_policy,
        )
    )


def _reissue_id(invitation_id: str) -> str:
    """The stable id of an invitation's reissue, in a namespace of its own (no funnel
    `external_ref` or `Idempotency-Key` can name it), so a repeated reissue finds it."""
    return id_from_bytes(hashlib.sha256(b"invites/reissue\x00" + invitation_id.encode()).digest()[:16])


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


def _summary(execution: WorkflowExecution) -> InvitationSummary:
    attrs = execution.typed_search_attributes
    status = attrs.get(names.STATUS)
    return InvitationSummary(
        id=execution.id.removeprefix("invitation-"),
        email=attrs.get(names.EMAIL),
        status=Status(status) if status in Status._value2member_map_ else None,
        external_ref=attrs.get(names.REF),
        created_at=execution.start_time,
        expires_at=attrs.get(names.EXPIRES_AT),
        closed_at=execution.close_time,
    )
