"""`invites create --mode provisioned` and what `invites show` tells of a provisioned invitation."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.cli.conftest import Cli, unique_email

pytestmark = pytest.mark.devserver


async def test_create_with_mode_provisioned_makes_the_account_ahead(cli: Cli):
    email = unique_email("pia")
    created = await cli.create(email, "--role", "customer", "--mode", "provisioned")
    assert created["mode"] == "provisioned"
    async with asyncio.timeout(20):
        while not cli.stack.auth0.tenant.users_by_email(email):
            await asyncio.sleep(0.1)
    [account] = cli.stack.auth0.tenant.users_by_email(email)
    assert account["app_metadata"]["invites"] == {"status": "invited", "invitation_id": created["id"]}

    wrong = await cli("create", "--email", unique_email(), "--mode", "magic")
    assert wrong.exit_code == 2


async def test_show_tells_the_account_made_ahead_its_ticket_mail_and_its_removal(cli: Cli):
    s = cli.stack
    expiring = await s.invite(
        unique_email("gone"), mode="provisioned", reminders=(), expires_in=timedelta(seconds=3)
    )
    async with asyncio.timeout(30):
        final = await expiring.result()

    shown = await cli.json("show", final.invitation_id)
    moments = [(m["event"], m["detail"]) for m in shown["timeline"]]
    assert [event for event, _ in moments] == [
        "created",
        "account made ahead",
        "sent",
        "expired",
        "account made ahead",
        "closed",
    ]
    assert final.provisioned_user_id in moments[1][1]
    assert moments[4][1] == "removed: never used"
    assert shown["invitation"]["mode"] == "provisioned"


async def test_show_tells_a_fall_back_to_the_link(cli: Cli):
    s = cli.stack
    email = unique_email("had")
    s.auth0.create_user(email)
    handle = await s.invite(email, mode="provisioned", reminders=())
    await s.sent(handle)
    shown = await cli.json("show", handle.id.removeprefix("invitation-"))
    moments = [(m["event"], m["detail"]) for m in shown["timeline"]]
    assert moments[1:3] == [
        ("looked up", "existing account: the link instead of an account made ahead"),
        ("sent", "invitation mail"),
    ]
