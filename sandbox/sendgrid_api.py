"""SendGrid v3 `POST /v3/mail/send`, as the `sendgrid` SDK sends it.

Point the SDK at it with `SendGridAPIClient(api_key, host=url)`. The body is validated like
SendGrid does (all errors at once, `{"errors": [{message, field, help}]}`); addresses listed in
`rejected` get the 400 SendGrid gives an address it will not take. Accepted mail answers 202
with `X-Message-Id` and is kept in `messages`.

With `events_url`, each accepted mail is then reported to that Event Webhook as SendGrid does
(`sandbox/sendgrid_events.py`): `processed`, then `delivered`, or a hard `bounce` for addresses
listed in `bouncing` (or `bounce@…`), or `dropped` for `drop@…`, in one signed post per mail.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from sandbox.fake_app import FakeService, parsed_body
from sandbox.faults import Clock
from sandbox.sendgrid_events import EventPoster, dev_private_key, outcome_events

SEND = "/v3/mail/send"
BOUNCES = "/__fake/bounces"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def sendgrid_error_body(status: int, message: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "field": None, "help": None}]}


@dataclass
class SentMail:
    """One accepted send request."""

    message_id: str
    body: dict[str, Any]
    at: float

    @property
    def to(self) -> list[str]:
        return [t["email"] for p in self.body["personalizations"] for t in p.get("to", [])]

    @property
    def subject(self) -> str | None:
        return self.body["personalizations"][0].get("subject") or self.body.get("subject")

    @property
    def custom_args(self) -> dict[str, str]:
        """Top-level custom_args overlaid with the first personalization's, as SendGrid does."""
        return {
            **self.body.get("custom_args", {}),
            **self.body["personalizations"][0].get("custom_args", {}),
        }

    @property
    def template_id(self) -> str | None:
        return self.body.get("template_id")

    @property
    def dynamic_template_data(self) -> dict[str, Any]:
        return self.body["personalizations"][0].get("dynamic_template_data", {})

    @property
    def text(self) -> str:
        """All content values joined, to look for links in tests."""
        return "\n".join(c.get("value", "") for c in self.body.get("content", []))


class SendGridFake(FakeService):
    """A SendGrid account accepting mail for one API key."""

    def __init__(
        self,
        *,
        api_key: str = "SG.fake-key",
        rejected: set[str] | None = None,
        clock: Clock = time.time,
        events_url: str | None = None,
        event_key: ec.EllipticCurvePrivateKey | None = None,
    ) -> None:
        super().__init__(clock=clock, error_body=sendgrid_error_body)
        self.api_key = api_key
        self.rejected = {a.lower() for a in rejected or set()}
        self.messages: list[SentMail] = []
        self.bouncing: set[str] = set()
        self.events = (
            EventPoster(events_url, event_key or dev_private_key(), clock=clock) if events_url else None
        )
        self._posting: set[asyncio.Task[bool]] = set()

    def app(self) -> web.Application:
        app = super().app()
        app.on_shutdown.append(self._stop_posting)
        return app

    async def _stop_posting(self, _app: web.Application) -> None:
        for task in list(self._posting):
            task.cancel()

    def bounce(self, *addresses: str) -> None:
        """From now on, accept mail to these addresses and report it bounced (a fault setting)."""
        self.bouncing.update(a.lower() for a in addresses)

    def reject(self, *addresses: str) -> None:
        """From now on, answer 400 for mail to these addresses."""
        self.rejected.update(a.lower() for a in addresses)

    def messages_to(self, email: str) -> list[SentMail]:
        return [m for m in self.messages if email.lower() in (t.lower() for t in m.to)]

    def routes(self) -> list[web.RouteDef]:
        return [web.post(SEND, self.send), web.post(BOUNCES, self.script_bounces)]

    async def script_bounces(self, request: web.Request) -> web.Response:
        """`POST /__fake/bounces {"addresses": [...]}`: the fault setting for another process
        (`invites dev`'s sandbox): mail to these addresses is accepted, then reported bounced."""
        body = await parsed_body(request)
        addresses = body.get("addresses") if isinstance(body, dict) else None
        if not isinstance(addresses, list) or not all(
            isinstance(a, str) and _EMAIL.match(a) for a in addresses
        ):
            return web.json_response({"error": "give addresses: a list of email addresses"}, status=400)
        self.bounce(*addresses)
        return web.json_response({"bouncing": sorted(self.bouncing)}, status=201)

    async def send(self, request: web.Request) -> web.Response:
        """POST /v3/mail/send."""
        auth = request.headers.get("Authorization", "")
        if not auth:
            return self._errors(401, [("authorization required", None)])
        if auth != f"Bearer {self.api_key}":
            return self._errors(
                401,
                [("The provided authorization grant is invalid, expired, or revoked", None)],
            )
        body = await parsed_body(request)
        if not isinstance(body, dict):
            return self._errors(400, [("Bad Request", None)])
        errors = validate_mail(body) or self._rejected_recipients(body)
        if errors:
            return self._errors(400, errors)
        if body.get("mail_settings", {}).get("sandbox_mode", {}).get("enable"):
            return web.Response(status=200)  # validated, not sent: SendGrid's sandbox mode
        message_id = secrets.token_urlsafe(16)[:22]
        mail = SentMail(message_id, body, self.clock())
        self.messages.append(mail)
        if self.events is not None:
            self._report(mail)
        return web.Response(status=202, headers={"X-Message-Id": message_id})

    def _report(self, mail: SentMail) -> None:
        """Post the mail's events aside, as SendGrid does a moment after it took the mail."""
        for to in mail.to:
            events = outcome_events(to, mail.message_id, mail.custom_args, to.lower() in self.bouncing)
            task = asyncio.get_running_loop().create_task(self.events.post(events))  # type: ignore[union-attr]
            self._posting.add(task)
            task.add_done_callback(self._posting.discard)

    def _rejected_recipients(self, body: dict[str, Any]) -> list[tuple[str, str | None]]:
        return [
            ("Does not contain a valid address.", f"personalizations.{i}.to.{j}.email")
            for i, p in enumerate(body["personalizations"])
            for j, to in enumerate(p["to"])
            if to["email"].lower() in self.rejected
        ]

    def _errors(self, status: int, errors: list[tuple[str, str | None]]) -> web.Response:
        body = {"errors": [{"message": m, "field": f, "help": None} for m, f in errors]}
        return web.json_response(body, status=status)


def validate_mail(body: dict[str, Any]) -> list[tuple[str, str | None]]:
    """SendGrid's checks on a send request, as (message, field) pairs; empty when valid."""
    errors: list[tuple[str, str | None]] = []
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append(
            (
                "The personalizations field is required and must have at least one personalization.",
                "personalizations",
            )
        )
        personalizations = []
    for i, p in enumerate(personalizations):
        to = p.get("to") if isinstance(p, dict) else None
        if not isinstance(to, list) or not to:
            errors.append(
                (
                    "The to array is required for all personalization objects, and must have at "
                    "least one email object with a valid email address.",
                    f"personalizations.{i}.to",
                )
            )
            continue
        for j, recipient in enumerate(to):
            if not _EMAIL.match(str(recipient.get("email", ""))):
                errors.append(("Does not contain a valid address.", f"personalizations.{i}.to.{j}.email"))
    sender = body.get("from")
    if not isinstance(sender, dict) or "email" not in sender:
        errors.append(
            (
                "The from object must be provided for every email send. It is an object that "
                "requires an email parameter, but may also contain a name parameter.",
                "from",
            )
        )
    elif not _EMAIL.match(str(sender["email"])):
        errors.append(("The from email does not contain a valid address.", "from.email"))
    templated = bool(body.get("template_id"))
    every_has_subject = bool(personalizations) and all(
        isinstance(p, dict) and p.get("subject") for p in personalizations
    )
    if not templated and not body.get("subject") and not every_has_subject:
        errors.append(
            (
                "The subject is required. You can get around this requirement if you use a "
                "template with a subject defined or if every personalization has a subject "
                "defined.",
                "subject",
            )
        )
    content = body.get("content")
    if not templated and (not isinstance(content, list) or not content):
        errors.append(
            (
                "Unless a valid template_id is provided, the content parameter is required. "
                "There must be at least one defined content block. We typically suggest both "
                "text/plain and text/html blocks are included, but only one block is required.",
                "content",
            )
        )
    for i, block in enumerate(content if isinstance(content, list) else []):
        if not isinstance(block, dict) or not block.get("value"):
            errors.append(
                (
                    "The content value must be a string at least one character in length.",
                    f"content.{i}.value",
                )
            )
    for key, value in (body.get("custom_args") or {}).items():
        if not isinstance(value, str):
            errors.append(("Invalid type. Expected: string", f"custom_args.{key}"))
    return errors
