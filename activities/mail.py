"""Invitation and reminder mails: rendered here, sent through SendGrid or kept in the outbox.

The link token is made here, inside the activity, from (invitation id, generation): it never
travels through workflow history. Each mail has an id (`<invitation>:<kind>:<seq>`) recorded
once sent, so a retried activity does not send the same mail twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import CustomArg, From, Mail
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import http_error
from invites.db.records import OutboxMail
from invites.db.store import Store
from invites.models import MailInput, MailResult
from invites.tokens import TokenSigner

TEMPLATES = Path(__file__).parent / "templates"
SENDGRID_TIMEOUT_S = 15


class RenderedMail(BaseModel):
    to: str
    kind: str
    subject: str
    text: str
    html: str
    link: str
    invitation_id: str
    locale: str
    seq: int = 0  # which mail of the invitation (MailInput.seq)


class MailRenderer:
    """Project templates per locale (`templates/<locale>/<kind>.{subject,txt,html}.j2`), English fallback."""

    def __init__(self, product: str, templates: Path = TEMPLATES):
        self._product = product
        self._env = Environment(
            loader=FileSystemLoader(templates),
            autoescape=select_autoescape(["html.j2"]),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
        self._locales = {p.name for p in templates.iterdir() if p.is_dir()}

    def locale_for(self, requested: str) -> str:
        for candidate in (requested, requested.replace("_", "-").split("-")[0].lower()):
            if candidate in self._locales:
                return candidate
        return "en"

    def render(self, inp: MailInput, link: str) -> RenderedMail:
        locale = self.locale_for(inp.locale)
        context = {
            "product": self._product,
            "link": link,
            "screen_hint": inp.screen_hint,
            "mode": inp.mode,
            "expires_on": inp.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "locale": locale,
        }

        def render(part: str) -> str:
            return self._env.get_template(f"{locale}/{inp.kind}.{part}.j2").render(context)

        subject = render("subject").strip()
        context["subject"] = subject
        return RenderedMail(
            to=inp.email,
            kind=inp.kind,
            subject=subject,
            text=render("txt"),
            html=render("html"),
            link=link,
            invitation_id=inp.invitation_id,
            locale=locale,
            seq=inp.seq,
        )


class MailSender(Protocol):
    keeps_content: bool

    async def send(self, mail: RenderedMail) -> str | None:
        """Deliver the mail; return the provider's message id. Raise ApplicationError on failure."""


class OutboxSender:
    """Dev and test backend: the mail is only recorded (the outbox page shows it with its link)."""

    keeps_content = True

    async def send(self, mail: RenderedMail) -> str | None:
        return None


class SendGridSender:
    """SendGrid v3 through the official SDK (sync, so it runs in a thread).

    Every mail carries `custom_args` (`invitation_id`, `seq`, `mail_kind`): SendGrid returns them
    in each Event Webhook event, which is how `POST /v1/webhooks/sendgrid` finds the invitation.
    """

    def __init__(
        self,
        client: SendGridAPIClient,
        sender: str,
        sender_name: str,
        templates: dict[str, str | None] | None = None,
        *,
        keeps_content: bool = False,
    ):
        # False: SendGrid's copy is the record and ours keeps no link. True only in development
        # (INVITES_MAIL_OUTBOX_COPY), where /dev/outbox shows the mail the fake SendGrid took.
        self.keeps_content = keeps_content
        # The SDK's HTTP client logs request bodies (our links) and headers (the API key) at
        # DEBUG: keep that logger above DEBUG whatever the application's level.
        logging.getLogger("python_http_client").setLevel(logging.INFO)
        self._client = client
        self._from = From(sender, sender_name)
        self._templates = templates or {}

    async def send(self, mail: RenderedMail) -> str | None:
        message = self._message(mail)
        try:
            response = await asyncio.to_thread(
                self._client.client.mail.send.post, request_body=message.get(), timeout=SENDGRID_TIMEOUT_S
            )
        except HTTPError as exc:
            if exc.status_code == 400:
                # SendGrid refuses the message itself (bad address, blocked recipient): for good.
                raise ApplicationError(
                    f"SendGrid rejected the mail: {_first_error(exc.body)}",
                    type="MailRejected",
                    non_retryable=True,
                ) from None
            raise http_error(
                "SendGrid", exc.status_code, dict(exc.headers or {}), _first_error(exc.body)
            ) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise http_error("SendGrid", None, None, type(exc).__name__) from None
        return response.headers.get("X-Message-Id")

    def _message(self, mail: RenderedMail) -> Mail:
        template_id = self._templates.get(mail.kind)
        if template_id:
            message = Mail(from_email=self._from, to_emails=mail.to)
            message.template_id = template_id
            message.dynamic_template_data = {
                "link": mail.link,
                "subject": mail.subject,
                "locale": mail.locale,
            }
        else:
            message = Mail(
                from_email=self._from,
                to_emails=mail.to,
                subject=mail.subject,
                plain_text_content=mail.text,
                html_content=mail.html,
            )
        message.custom_arg = [
            CustomArg("invitation_id", mail.invitation_id),
            CustomArg("seq", str(mail.seq)),
            CustomArg("mail_kind", mail.kind),
        ]
        return message


class MailActivities:
    def __init__(
        self, sender: MailSender, store: Store, signer: TokenSigner, renderer: MailRenderer, base_url: str
    ):
        self._sender = sender
        self._store = store
        self._signer = signer
        self._renderer = renderer
        self._base_url = base_url.rstrip("/")

    @activity.defn
    async def send_mail(self, inp: MailInput) -> MailResult:
        """Send the invitation or a reminder, at most once per mail id."""

        async def link() -> str:
            return f"{self._base_url}/i/{self._signer.create(inp.invitation_id, inp.generation)}"

        return await self.deliver(inp, link)

    async def deliver(self, inp: MailInput, make_link: Callable[[], Awaitable[str]]) -> MailResult:
        """Send one mail carrying the link `make_link` makes (our link, or a provisioned
        invitation's password-change ticket: activities/provisioning.py), at most once per mail
        id: a mail already sent makes no link."""
        if await self._store.mail_recorded(inp.mail_id):
            return MailResult(mail_id=inp.mail_id, already_sent=True)
        link = await make_link()
        mail = self._renderer.render(inp, link)
        message_id = await self._sender.send(mail)
        keep = self._sender.keeps_content  # a provider's copy is the record; ours keeps no token
        await self._store.record_mail(
            OutboxMail(
                id=inp.mail_id,
                invitation_id=inp.invitation_id,
                to=mail.to,
                kind=inp.kind,
                subject=mail.subject,
                html=mail.html if keep else "",
                text=mail.text if keep else "",
                link=link if keep else "",
                sent_at=datetime.now(UTC),
            )
        )
        activity.logger.info("mail sent", extra={"invitation_id": inp.invitation_id, "kind": inp.kind})
        return MailResult(mail_id=inp.mail_id, message_id=message_id)


def _first_error(body: bytes | str | None) -> str:
    try:
        errors = json.loads(body or b"{}").get("errors") or []
        return str(errors[0].get("message")) if errors else ""
    except (ValueError, AttributeError):
        return ""
