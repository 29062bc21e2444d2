"""Mail in `invites dev`: through the SendGrid stand-in the sandbox serves, so delivery events
reach the API as they would from SendGrid.

The worker sends with the real `sendgrid` SDK to `<sandbox>/sendgrid`; the sandbox takes each
mail and posts its events (`processed`, `delivered`, or a bounce for `bounce@…`) to
`POST /v1/webhooks/sendgrid`, signed with the development key pair, whose public half is the
API's default key in development (`DEV_SENDGRID_EVENT_PUBLIC_KEY`). The outbox keeps a whole
copy of each mail (`INVITES_MAIL_OUTBOX_COPY`), so `/dev/outbox` shows it with its link.
"""

from __future__ import annotations

from enum import StrEnum

from invites.settings import DEV_SENDGRID_EVENT_PUBLIC_KEY, Settings


class DevMail(StrEnum):
    """Where `invites dev` sends mail. `sendgrid`: through the stand-in, with delivery events
    (the default); `outbox`: into our database's outbox only. The benchmark uses `outbox`: the
    stand-in's work (taking the mail, signing and posting its events) is SendGrid's in
    production, and on a small machine it would take the CPU the figures measure."""

    sendgrid = "sendgrid"
    outbox = "outbox"


# The sandbox's SendGrid API key: public, accepted by the stand-in only.
DEV_SANDBOX_SENDGRID_KEY = "SG.invites-dev"


def sandbox_args(settings: Settings, mail: DevMail) -> list[str]:
    """The sandbox's arguments that turn its SendGrid stand-in on (none with `outbox`)."""
    if mail == DevMail.outbox:
        return []
    events = f"{settings.public_base_url.rstrip('/')}/v1/webhooks/sendgrid"
    return ["--sendgrid-events-url", events, "--sendgrid-api-key", DEV_SANDBOX_SENDGRID_KEY]


def mail_env(settings: Settings, mail: DevMail) -> dict[str, str]:
    """The settings that send the worker's mail through the stand-in (none with `outbox`: the
    development default, mail kept in our database only)."""
    if mail == DevMail.outbox:
        return {}
    return {
        "INVITES_MAIL_BACKEND": "sendgrid",
        "INVITES_SENDGRID_HOST": f"{settings.auth0_base_url.rstrip('/')}/sendgrid",
        "INVITES_SENDGRID_API_KEY": DEV_SANDBOX_SENDGRID_KEY,
        "INVITES_MAIL_OUTBOX_COPY": "true",
        "INVITES_SENDGRID_EVENT_PUBLIC_KEY": DEV_SENDGRID_EVENT_PUBLIC_KEY,
    }


def banner_line(mail: DevMail) -> str:
    if mail == DevMail.outbox:
        return "  mail            outbox only (--mail outbox: no SendGrid stand-in, no delivery events)"
    return f"  SendGrid events verification key {DEV_SENDGRID_EVENT_PUBLIC_KEY}"
