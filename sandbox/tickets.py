"""Password-change tickets in the sandbox tenant, as Auth0 makes and serves them.

    POST /api/v2/tickets/password-change   (Management API)  201 {"ticket": "<url>"}
    GET  /u/reset-password?ticket=…         the page: choose a password
    POST /u/reset-password                  set it, mark the address verified when the ticket
                                            says so, then 302 to the ticket's `result_url`

A ticket is used once, lasts `ttl_sec` (default 5 days), and only a user's newest ticket is
valid: asking for a new one invalidates the older ones, as Auth0 does. A bad, used, superseded
or expired ticket shows Auth0's error page instead of the form. Once the password is set, the
person signs in at `result_url` (the application starts the login, where the post-login Action
runs), as on a tenant with the classic reset page. Tickets are kept beside the tenant's state
so a restart of `invites dev` keeps mailed tickets working.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

from sandbox.auth0_tenant import DATABASE_CONNECTION, Auth0Error, Tenant, user_not_found
from sandbox.fake_app import parsed_body
from sandbox.faults import Clock

API_ROUTE = "/api/v2/tickets/password-change"
PAGE_ROUTE = "/u/reset-password"
DEFAULT_TTL_S = 432_000  # Auth0's default: five days
MIN_PASSWORD_LENGTH = 8
TICKET_FIELDS = {
    "result_url",
    "user_id",
    "client_id",
    "organization_id",
    "connection_id",
    "email",
    "ttl_sec",
    "mark_email_as_verified",
    "includeEmailInRedirect",
    "identity",
}
# What the page says for each ticket that cannot be used (Auth0's reset-password-error screen).
INVALID = ("Invalid Link", "This link is not valid. Request a new one from the application.")
EXPIRED = ("Link Expired", "This ticket was expired. Request a new one from the application.")
USED = ("Link Already Used", "This ticket was already used. Request a new one from the application.")


class PasswordTickets:
    """The tickets of one sandbox tenant and their routes."""

    def __init__(self, tenant: Tenant, *, path: str | Path | None = None, clock: Clock = time.time) -> None:
        self.tenant = tenant
        self.clock = clock
        self.path = Path(path) if path else None
        self.tickets: dict[str, dict[str, Any]] = {}
        if self.path and self.path.exists():
            self.tickets = json.loads(self.path.read_text())
        self.pages = Environment(
            loader=FileSystemLoader(Path(__file__).with_name("templates")),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
        )

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(API_ROUTE, self.create_route),
            web.get(PAGE_ROUTE, self.page),
            web.post(PAGE_ROUTE, self.set_password),
        ]

    # -- for tests ---------------------------------------------------------------------------

    def issued_for(self, user_id: str) -> list[str]:
        """The ticket ids made for a user, oldest first."""
        return [t for t, v in self.tickets.items() if v["user_id"] == user_id]

    # -- the Management API ------------------------------------------------------------------

    async def create_route(self, request: web.Request) -> web.Response:
        """POST /api/v2/tickets/password-change, by `user_id` or by `connection_id` + `email`."""
        body = await parsed_body(request)
        if not isinstance(body, dict):
            raise Auth0Error(400, "Payload validation error: 'Expected type object'.", "invalid_body")
        unknown = sorted(set(body) - TICKET_FIELDS)
        if unknown:
            raise _invalid(f"Additional properties not allowed: {','.join(unknown)}")
        user = self._user_for(body)
        ttl = body.get("ttl_sec", 0)
        if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 0:
            raise _invalid("Expected type integer but found another type on property ttl_sec")
        result_url = body.get("result_url")
        if result_url is not None and not _is_http_url(result_url):
            raise _invalid(f"Object didn't pass validation for format url: {result_url}")
        if user["identities"][0]["connection"] != DATABASE_CONNECTION:
            raise Auth0Error(
                400, "The user does not have a password (not a database connection).", "invalid_body"
            )
        ticket = secrets.token_urlsafe(32)
        for other in self.tickets.values():  # only the newest ticket of a user is valid
            if other["user_id"] == user["user_id"] and other["state"] == "valid":
                other["state"] = "superseded"
        self.tickets[ticket] = {
            "user_id": user["user_id"],
            "result_url": result_url,
            "expires_at": self.clock() + (ttl or DEFAULT_TTL_S),
            "verify": body.get("mark_email_as_verified") is True,
            "state": "valid",
        }
        self._save()
        return web.json_response(
            {"ticket": f"{request.url.origin()}{PAGE_ROUTE}?ticket={ticket}#"}, status=201
        )

    def _user_for(self, body: dict[str, Any]) -> dict[str, Any]:
        user_id, connection_id, email = body.get("user_id"), body.get("connection_id"), body.get("email")
        if user_id is not None and (connection_id is not None or email is not None):
            raise _invalid("user_id cannot be used together with connection_id or email")
        if isinstance(user_id, str) and user_id:
            return self.tenant.user(user_id)
        if isinstance(email, str) and isinstance(connection_id, str):
            user = self.tenant.user_in(DATABASE_CONNECTION, email)
            if user is None:
                raise user_not_found()
            return user
        raise _invalid("Missing required property: user_id")

    # -- the page ----------------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.Response:
        """The form to choose a password, or the error page for a ticket that cannot be used."""
        ticket, problem = self._usable(request.query.get("ticket", ""))
        if problem is not None:
            return self._error(problem)
        user = self.tenant.user(ticket["user_id"])
        return self._form(request.query["ticket"], user["email"])

    async def set_password(self, request: web.Request) -> web.Response:
        """Set the password (once), mark the address verified if asked, go to `result_url`."""
        form = await request.post()
        ticket_id = str(form.get("ticket", ""))
        ticket, problem = self._usable(ticket_id)
        if problem is not None:
            return self._error(problem)
        password, confirm = str(form.get("password", "")), str(form.get("confirm", ""))
        user = self.tenant.user(ticket["user_id"])
        if len(password) < MIN_PASSWORD_LENGTH:
            return self._form(ticket_id, user["email"], f"Use at least {MIN_PASSWORD_LENGTH} characters.")
        if password != confirm:
            return self._form(ticket_id, user["email"], "The passwords do not match.")
        patch: dict[str, Any] = {"password": password}
        if ticket["verify"]:
            patch["email_verified"] = True
        self.tenant.update_user(user["user_id"], patch)
        ticket["state"] = "used"
        self._save()
        if ticket["result_url"]:
            return web.Response(status=302, headers={"Location": ticket["result_url"]})
        return self._message(200, "Password Changed", "You have successfully changed your password.")

    def _usable(self, ticket_id: str) -> tuple[dict[str, Any], tuple[str, str] | None]:
        ticket = self.tickets.get(ticket_id) if ticket_id else None
        if ticket is None or ticket["user_id"] not in self.tenant.users:
            return {}, INVALID
        if ticket["state"] != "valid":
            return ticket, USED if ticket["state"] == "used" else INVALID
        if ticket["expires_at"] <= self.clock():
            return ticket, EXPIRED
        return ticket, None

    def _form(self, ticket: str, email: str, error: str | None = None) -> web.Response:
        html = self.pages.get_template("reset_password.html").render(
            ticket=ticket, email=email, error=error, min_password=MIN_PASSWORD_LENGTH
        )
        return web.Response(status=400 if error else 200, text=html, content_type="text/html")

    def _error(self, problem: tuple[str, str]) -> web.Response:
        status = 410 if problem in (EXPIRED, USED) else 404
        return self._message(status, *problem)

    def _message(self, status: int, title: str, message: str) -> web.Response:
        html = self.pages.get_template("message.html").render(title=title, message=message, link=None)
        return web.Response(status=status, text=html, content_type="text/html")

    def _save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.tickets, separators=(",", ":")))
        os.replace(tmp, self.path)


def _invalid(message: str) -> Auth0Error:
    return Auth0Error(400, f"Payload validation error: '{message}'.", "invalid_body")


def _is_http_url(url: Any) -> bool:
    parts = urlsplit(url) if isinstance(url, str) else None
    return parts is not None and parts.scheme in ("http", "https") and bool(parts.netloc)
