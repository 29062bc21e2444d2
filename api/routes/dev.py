"""Demo pages for `invites dev` (mounted only when INVITES_ENV=development).

`/` sends a person to `/dev`, where the story starts: a stand-in funnel form. `/dev/outbox`
shows the mails the worker kept (and refreshes itself), and `/app` is a small customer space: it
signs in through the Auth0 sandbox (authorization code flow), then shows who I am, and from
`GET /v1/me` the roles every invitation I accepted granted and the funnel data each carried.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import jwt
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.deps import ServicesDep
from invites.models import Reason
from invites.schemas import Me
from invites.settings import DEV_API_KEY

router = APIRouter(include_in_schema=False)
_pages = Environment(
    loader=FileSystemLoader(Path(__file__).parent.parent / "templates"), autoescape=select_autoescape()
)
# The outbox shows each mail in a small frame: its links must open in the window, not there.
PREVIEW_BASE = '<base target="_top">'
_HEAD = re.compile(r"<head(\s[^>]*)?>", re.IGNORECASE)


def mail_preview(html: str) -> str:
    """The mail's HTML for the outbox's frame: `<base target="_top">` first in its head (or at
    the very start when it has none), so every link in it opens in the window."""
    match = _HEAD.search(html)
    if match is None:
        return PREVIEW_BASE + html
    return html[: match.end()] + PREVIEW_BASE + html[match.end() :]


_pages.filters["mail_preview"] = mail_preview


def utc(moment: datetime) -> str:
    """A time as the dev pages write it: `2026-12-06 10:00:00 UTC`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + " UTC"


_pages.filters["utc"] = utc

ACCESS_COOKIE, ID_COOKIE = "invites_dev_at", "invites_dev_id"
EXPLAIN = {
    Reason.EMAIL_MISMATCH: "The invitation was sent to a different email address. You are signed in, but the "
    "invitation is still waiting: sign in with the invited address to accept it.",
    Reason.ALREADY_REDEEMED: "This invitation was already accepted by another account.",
    Reason.EXPIRED: "This invitation has expired. Ask for a new one.",
    Reason.REVOKED: "This invitation was withdrawn.",
    Reason.STALE_LINK: "A newer invitation mail was sent: use the link in the latest one.",
    "invalid_link": "The invitation link was not valid.",
    "unavailable": "We could not confirm your invitation just now; it will be applied shortly.",
}


def _render(name: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(_pages.get_template(name).render(**context))


@router.get("/")
async def home() -> RedirectResponse:
    """The API's root sends a person to the start of the story (in development only: in
    production the root is the API's JSON 404, like any path it does not serve)."""
    return RedirectResponse("/dev", status_code=307)


@router.get("/dev")
async def funnel_page(services: ServicesDep) -> HTMLResponse:
    """The stand-in funnel form, offering the roles an invitation may grant."""
    return _render(
        "dev/funnel.html",
        title="Funnel",
        roles=services.settings.grantable_roles,
        api_key=DEV_API_KEY,
        default_policy=services.settings.email_policy,
    )


@router.get("/dev/outbox")
async def outbox_page(services: ServicesDep) -> HTMLResponse:
    return _render("dev/outbox.html", title="Outbox", mails=await services.store.list_outbox(limit=50))


@router.get("/dev/api/outbox")
async def outbox_json(services: ServicesDep) -> list[dict[str, Any]]:
    mails = await services.store.list_outbox(limit=200)
    return [
        {
            "id": m.id,
            "to": m.to,
            "kind": m.kind,
            "subject": m.subject,
            "link": m.link,
            "invitation_id": m.invitation_id,
            "sent_at": m.sent_at.isoformat(),
        }
        for m in mails
    ]


@router.get("/app")
async def customer_space(request: Request, services: ServicesDep) -> Response:
    access, id_token = request.cookies.get(ACCESS_COOKIE), request.cookies.get(ID_COOKIE)
    login_url = _plain_signin(services.settings.signin_url)
    if not access or not id_token:
        return _render("dev/app.html", title="Customer space", user=None, login_url=login_url)
    # The id token came straight from the sandbox's token endpoint: read, not re-verified.
    user = jwt.decode(id_token, options={"verify_signature": False})
    # The customer space's own call to /v1/me, answered in process: never to the host the
    # request's Host header names (it would receive the access token).
    transport = httpx.ASGITransport(app=request.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://invites", timeout=10) as http:
        response = await http.get("/v1/me", headers={"Authorization": f"Bearer {access}"})
    if response.status_code != 200:
        return _render("dev/app.html", title="Customer space", user=None, login_url=login_url)
    # The account's roles are those of every invitation it accepted, from /v1/me: the token's
    # roles claim holds only what this login's invitation granted.
    me = Me.model_validate(response.json())
    error = user.get(f"{services.settings.claim_namespace}invitation_error")
    return _render(
        "dev/app.html",
        title="Customer space",
        user=user,
        roles=me.roles,
        invitation_error=EXPLAIN.get(error, error) if error else None,
        me=me,
        login_url=login_url,
    )


@router.get("/app/callback")
async def callback(request: Request, services: ServicesDep, code: str = "") -> Response:
    """Exchange the sandbox's authorization code for tokens, keep them in cookies."""
    settings = services.settings
    redirect_uri = str(request.url_for("callback"))
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            settings.auth0_base_url.rstrip("/") + "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "client_id": settings.auth0_client_id,
                "client_secret": settings.auth0_client_secret.get_secret_value(),
                "code": code,
                "redirect_uri": redirect_uri,
            },
        )
    if response.status_code != 200:
        return HTMLResponse("<p>Sign-in failed: the code was refused. <a href='/app'>Try again</a>.</p>", 400)
    tokens = response.json()
    page = RedirectResponse("/app", status_code=303)
    for name, value in ((ACCESS_COOKIE, tokens["access_token"]), (ID_COOKIE, tokens["id_token"])):
        page.set_cookie(name, value, httponly=True, samesite="lax", max_age=3600)
    return page


@router.get("/app/logout")
async def logout() -> Response:
    page = RedirectResponse("/app", status_code=303)
    page.delete_cookie(ACCESS_COOKIE)
    page.delete_cookie(ID_COOKIE)
    return page


def _plain_signin(url: str) -> str:
    parts = urlsplit(url)
    query = [
        (k, v) for k, v in parse_qsl(parts.query) if k not in {"invitation", "login_hint", "screen_hint"}
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))
