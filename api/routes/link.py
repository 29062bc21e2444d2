"""GET /i/{token}: the link in the mail. Opening it never uses it up (mail scanners fetch links).

The first opening of a valid link is told to the workflow (`opened` signal: `opened_at`, the
funnel's "opened"); later ones send nothing, since the state already shows the first.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from temporalio.service import RPCError

from api.deps import ServicesDep
from api.services import Services
from invites.invitations import InvitationNotFound, get_state, handle_for
from invites.models import InvitationState, OpenedInput, Status
from invites.tokens import InvalidToken

router = APIRouter(tags=["invitee"])
log = logging.getLogger("invites.api.link")
_pages = Environment(
    loader=FileSystemLoader(Path(__file__).parent.parent / "templates"), autoescape=select_autoescape()
)

GONE = {
    Status.EXPIRED: (
        "This invitation has expired",
        "Ask the person or team who invited you to send a new one.",
    ),
    Status.REVOKED: ("This invitation was withdrawn", "It can no longer be used. Ask for a new invitation."),
    Status.ACCEPTED: ("This invitation was already used", "Sign in to your account to continue."),
    Status.UNDELIVERABLE: ("This invitation is no longer valid", "Ask for a new invitation."),
}
STALE = ("This link was replaced", "A newer invitation mail was sent to you: use the link in the latest one.")
UNKNOWN = ("This link is not valid", "Check that you copied the whole link from the invitation mail.")


def page(status: int, title: str, hint: str, message: str = "") -> HTMLResponse:
    html = _pages.get_template("page.html").render(title=title, message=message, hint=hint)
    return HTMLResponse(
        html, status_code=status, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    )


HTML = {"text/html": {"schema": {"type": "string"}}}


@router.get(
    "/i/{token}",
    response_class=RedirectResponse,
    status_code=302,
    responses={
        302: {"description": "To the sign-in page (`Location`)"},
        404: {"description": "Unknown or forged link (an HTML page)", "content": HTML},
        410: {"description": "Expired, revoked, used or replaced (an HTML page)", "content": HTML},
    },
)
async def open_link(token: str, services: ServicesDep) -> Response:
    """Send the invitee to sign in or sign up, or explain in plain words why the link is over."""
    try:
        link = services.signer.verify(token)  # before any Temporal call
    except InvalidToken:
        services.metrics.rejected_early.labels("link", "forged_token").inc()
        return page(404, *UNKNOWN)
    try:
        state = await get_state(services.temporal, link.invitation_id)
    except InvitationNotFound:
        return page(404, *UNKNOWN)
    if state.status != Status.PENDING:
        return page(410, *GONE[state.status])
    if await services.clock() >= state.expires_at:  # the expiry timer is about to fire
        return page(410, *GONE[Status.EXPIRED])
    if link.generation < state.generation:
        return page(410, *STALE)
    if state.opened_at is None:
        await _record_first_open(services, link.invitation_id)
    return RedirectResponse(
        signin_url(services.settings.signin_url, token, state),
        status_code=302,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


async def _record_first_open(services: Services, invitation_id: str) -> None:
    """Signal the opening; the invitee is sent on whatever Temporal answers (the state query
    just worked, so a failure here is rare, and an open is not worth a lost sign-in)."""
    try:
        await handle_for(services.temporal, invitation_id).signal(
            "opened", OpenedInput(at=await services.clock())
        )
    except (RPCError, RuntimeError) as exc:  # RuntimeError: a lazy client that cannot connect
        log.warning(
            "first open not recorded", extra={"invitation_id": invitation_id, "error": type(exc).__name__}
        )


def signin_url(base: str, token: str, state: InvitationState) -> str:
    """The configured sign-in URL (for a tenant: its /authorize URL with client id and redirect
    URI) plus `invitation`, `login_hint` and `screen_hint`."""
    parts = urlsplit(base)
    query = [
        (k, v) for k, v in parse_qsl(parts.query) if k not in {"invitation", "login_hint", "screen_hint"}
    ]
    query += [("invitation", token), ("login_hint", state.email), ("screen_hint", state.screen_hint)]
    return urlunsplit(parts._replace(query=urlencode(query)))
