"""POST /v1/webhooks/auth0: the Auth0 post-login Action reports a login that carried a link (or
logged in to an account a provisioned invitation created), or asks to claim by verified email."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from api.deps import ServicesDep
from api.errors import ApiError, unavailable
from api.services import Services
from invites.claims import claim
from invites.invitations import InvitationBusy, InvitationNotFound, InvitationRejected, redeem
from invites.models import Reason, RedeemInput
from invites.redemption import GONE
from invites.schemas import (
    ClaimAnswer,
    ClaimedInvitation,
    ClaimWebhook,
    ErrorBody,
    RedeemAccepted,
    RedeemRejected,
    RedeemWebhook,
)
from invites.tokens import InvalidToken

router = APIRouter(tags=["auth0"])
log = logging.getLogger("invites.api.webhook")


@router.post(
    "/v1/webhooks/auth0",
    response_model=RedeemAccepted | ClaimAnswer,
    response_description="Accepted (`invitation.redeem`), or claimed / none (`invitation.claim`)",
    responses={
        401: {"model": ErrorBody, "description": "Bad signature or stale timestamp"},
        422: {"model": ErrorBody, "description": "`invalid_request`: a signed body that is not a redeem"},
        404: {"model": ErrorBody, "description": "Forged or unknown invitation token"},
        409: {"model": RedeemRejected, "description": "`already_redeemed`, `email_mismatch`"},
        410: {"model": RedeemRejected, "description": "`expired`, `revoked`, `stale_link`"},
    },
)
async def auth0_webhook(request: Request, services: ServicesDep) -> JSONResponse:
    """Redeem the invitation for the account that just logged in (Standard Webhooks signed).

    A webhook id seen before is answered with the first answer and not applied again.
    """
    body = await request.body()  # at most 16 KiB (api/limits.py)
    if not _verified(body, dict(request.headers), services.settings.webhook_secrets):
        services.metrics.rejected_early.labels("webhook", "bad_signature").inc()
        raise ApiError(401, "invalid_signature", "The webhook signature or timestamp is not valid.")
    webhook_id = request.headers["webhook-id"]
    seen = await services.store.get_webhook(webhook_id)
    if seen is not None:
        return JSONResponse(seen.response, status_code=seen.status_code, headers={"Webhook-Replayed": "true"})

    status, payload = await (_claim(services, body) if _is_claim(body) else _redeem(services, body))
    if status < 500:
        receipt = await services.store.remember_webhook(
            webhook_id, status, payload, services.settings.webhook_receipt_ttl
        )
        status, payload = receipt.status_code, receipt.response
    return JSONResponse(payload, status_code=status)


async def _redeem(services: Services, body: bytes) -> tuple[int, dict[str, Any]]:
    try:
        event = RedeemWebhook.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return 422, _error("invalid_request", f"{where}: {first['msg']}")
    if event.invitation_id is not None:
        # An account a provisioned invitation created: no token, the workflow checks that it
        # created this very account (`not_provisioned` otherwise, answered as a forged link).
        invitation_id, generation, via = event.invitation_id, 0, "provisioned"
    else:
        try:
            link = services.signer.verify(event.invitation or "")
        except InvalidToken:
            services.metrics.rejected_early.labels("webhook", "forged_token").inc()
            return 404, _error("invalid_link", "The invitation link is not valid.")
        invitation_id, generation, via = link.invitation_id, link.generation, "link"
    req = RedeemInput(
        generation=generation,
        user=event.user,
        connection=event.connection,
        is_new_user=event.is_new_user,
        via=via,
    )
    try:
        result = await redeem(services.temporal, invitation_id, req, await services.clock())
    except InvitationNotFound:
        return 404, _error("invalid_link", "The invitation link is not valid.")
    except InvitationBusy:
        # Not taken in time (a burst past Temporal's in-flight update limit): the Action retries
        # the same message, which is then answered for good (a repeat by the same user is safe).
        raise unavailable("The invitation") from None
    except InvitationRejected as rejected:
        services.metrics.redemptions.labels(rejected.reason).inc()
        log.info("redeem rejected", extra={"invitation_id": invitation_id, "reason": rejected.reason})
        if rejected.reason == Reason.NOT_PROVISIONED:
            return 404, _error("invalid_link", "The invitation link is not valid.")
        status = 410 if rejected.reason in GONE else 409
        return status, RedeemRejected(reason=rejected.reason).model_dump()
    services.metrics.redemptions.labels("accepted").inc()
    log.info("redeem accepted", extra={"invitation_id": invitation_id, "grant": result.grant, "via": via})
    return 200, RedeemAccepted(**result.model_dump(exclude={"result"})).model_dump()


def _is_claim(body: bytes) -> bool:
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("type") == "invitation.claim"


async def _claim(services: Services, body: bytes) -> tuple[int, dict[str, Any]]:
    """`invitation.claim`: redeem every pending invitation of the verified address (invites.claims)."""
    try:
        event = ClaimWebhook.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        return 422, _error("invalid_request", f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
    try:
        results = await claim(
            services.temporal,
            services.settings,
            event.user,
            event.connection,
            event.is_new_user,
            await services.clock(),
        )
    except InvitationBusy:
        raise unavailable("The invitation") from None
    for result in results:
        services.metrics.redemptions.labels("accepted").inc()
        log.info("claim accepted", extra={"invitation_id": result.invitation_id, "grant": result.grant})
    if not results:
        return 200, ClaimAnswer(result="none").model_dump()
    claimed = [
        ClaimedInvitation(invitation_id=c.invitation_id, roles=c.roles, grant=c.grant) for c in results
    ]
    return 200, ClaimAnswer(result="claimed", invitations=claimed).model_dump()


def _verified(body: bytes, headers: dict[str, str], secrets: list[str]) -> bool:
    """The HMAC over id.timestamp.body with any accepted secret (the current one, then those of
    a rotation in progress), and a 5-minute timestamp tolerance."""
    for secret in secrets:
        try:
            Webhook(secret).verify(body, headers, json_parse=False)
        except (WebhookVerificationError, ValueError):  # ValueError: a malformed signature header
            continue
        return True
    return False


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
