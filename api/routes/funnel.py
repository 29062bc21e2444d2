"""POST /v1/invitations: the funnel invites a person."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Annotated

from auth0.management.core.api_error import ApiError as Auth0ApiError
from fastapi import APIRouter, Header, Response
from httpx import HTTPError

from api.deps import CreatorDep, ServicesDep
from api.errors import ApiError, unavailable
from api.services import Services
from invites.auth0 import UnknownRoles
from invites.db.records import InvitationRecord
from invites.ids import invitation_id_for_key, invitation_id_for_ref, new_invitation_id
from invites.invitations import get_state, start_invitation
from invites.models import InvitationInput, InvitationState
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
        422: {"model": ErrorBody, "description": "`invalid_request` or `unknown_role`."},
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
    await _check_roles(services, body.roles)
    settings = services.settings
    request_hash = _hash(body)
    now = datetime.now(UTC)
    record = InvitationRecord(
        id=_invitation_id(body, idempotency_key),
        email=body.email.lower(),
        data=body.data,
        app_metadata=body.app_metadata,
        request_hash=request_hash,
        created_at=now,
        external_ref=body.external_ref,
        idempotency_key=idempotency_key,
    )
    saved = await services.store.save_invitation(record)
    if not saved.created:
        if saved.request_hash != request_hash:
            raise ApiError(
                409, "idempotency_conflict", "This key was used before with a different request body."
            )
        stored = await services.store.get_invitation(saved.invitation_id)
        record = stored or record
    expires_in = timedelta(seconds=body.expires_in) if body.expires_in else settings.default_expires_in
    reminders = [timedelta(seconds=r) for r in body.reminders] if body.reminders is not None else None
    inp = InvitationInput(
        invitation_id=record.id,
        email=str(body.email),
        roles=body.roles,
        app_metadata=body.app_metadata,
        external_ref=body.external_ref,
        crm_contact_id=body.crm_contact_id,
        locale=body.locale,
        created_at=record.created_at,
        expires_at=record.created_at + expires_in,
        reminders=[int(r.total_seconds()) for r in (reminders or settings.default_reminders)],
        email_policy=body.email_policy or settings.email_policy,
    )
    # If Temporal is down this raises (503) after the row is saved; a retry with the same key
    # finds the row, sees the same body, and starts the same workflow id: nothing duplicates.
    _, started = await start_invitation(services.temporal, settings.task_queue, inp)
    if started:
        return InvitationPublic.from_state(_initial_state(inp))
    response.status_code = 200
    return InvitationPublic.from_state(await _current(services, inp))


async def _check_roles(services: Services, roles: list[str]) -> None:
    if not roles:
        return
    try:
        await services.auth0.roles.ids_for(roles)
    except UnknownRoles as exc:
        raise ApiError(422, "unknown_role", str(exc)) from None
    except (Auth0ApiError, HTTPError):
        raise unavailable("Auth0") from None


def _invitation_id(body: InvitationCreate, idempotency_key: str | None) -> str:
    if body.external_ref:
        return invitation_id_for_ref(body.external_ref)
    if idempotency_key:
        return invitation_id_for_key(idempotency_key)
    return new_invitation_id()


def _hash(body: InvitationCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _initial_state(inp: InvitationInput) -> InvitationState:
    return InvitationState(
        invitation_id=inp.invitation_id,
        email=inp.email,
        roles=inp.roles,
        external_ref=inp.external_ref,
        created_at=inp.created_at,
        expires_at=inp.expires_at,
        email_policy=inp.email_policy,
    )


async def _current(services: Services, inp: InvitationInput) -> InvitationState:
    """The live state of an invitation created before (its workflow answers the query)."""
    return await get_state(services.temporal, inp.invitation_id)
