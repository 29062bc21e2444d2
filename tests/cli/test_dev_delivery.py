"""Delivery events end to end in `invites dev`: the worker's mail goes to the sandbox's SendGrid
stand-in, which posts signed events to the API, and the invitations show them; the funnel
counts them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from invites.settings import DEV_SENDGRID_EVENT_PUBLIC_KEY
from tests.support.invites_dev import eventually, running_invites_dev


def test_the_sandbox_reports_delivery_and_a_bounce_to_the_api(tmp_path: Path):
    with running_invites_dev(tmp_path) as dev:
        assert f"SendGrid events verification key {DEV_SENDGRID_EVENT_PUBLIC_KEY}" in dev.log.read_text()
        asyncio.run(_walk(dev))


async def _walk(dev: Any) -> None:
    async with dev.client() as api:
        delivered = (
            await api.post("/v1/invitations", json={"email": "ann@example.com", "source": "dev"})
        ).json()
        bounced = (
            await api.post("/v1/invitations", json={"email": "bounce@example.com", "source": "dev"})
        ).json()

        async def shows(invitation_id: str, field: str, value: Any = None) -> bool:
            body = (await api.get(f"/v1/invitations/{invitation_id}")).json()
            return body[field] is not None if value is None else body[field] == value

        await eventually(lambda: shows(delivered["id"], "delivered_at"), timeout=30)
        await eventually(lambda: shows(bounced["id"], "status", "undeliverable"), timeout=30)
        # The outbox still shows the mail whole, link included (INVITES_MAIL_OUTBOX_COPY).
        outbox = (await api.get("/dev/api/outbox")).json()
        mail = next(m for m in outbox if m["invitation_id"] == delivered["id"])
        assert "/i/" in mail["link"]

        async def counted() -> bool:
            groups = (await api.get("/v1/stats/funnel")).json()["groups"]
            dev_group = next((g for g in groups if g["key"] == "dev"), None)
            return dev_group is not None and (
                dev_group["created"],
                dev_group["delivered"],
                dev_group["undeliverable"],
            ) == (2, 1, 1)

        await eventually(counted, timeout=30)
