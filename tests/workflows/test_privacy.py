"""The link token never enters workflow history, and no log line carries it."""

from __future__ import annotations

import logging

import pytest

from tests.support.auth0 import user_payload
from tests.support.stack import Stack


async def test_the_token_is_in_the_mail_but_never_in_history_or_logs(
    stack: Stack, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    async with stack.worker():
        handle = await stack.invite("private@example.com")
        await stack.sent(handle)
        stack.auth0.create_user("private@example.com")
        await stack.redeem(handle, user_payload(stack.auth0, "private@example.com"))
        await handle.result()
    (token,) = stack.links("private@example.com")
    history = (await handle.fetch_history()).to_json()
    assert token not in history
    assert len(caplog.records) > 0  # the workers did log
    for record in caplog.records:
        assert token not in record.getMessage()
        assert token not in str(record.__dict__)
    # and the outbox keeps no link when a provider delivers the mail
    (mail,) = await stack.store.list_outbox(invitation_id=(await handle.result()).invitation_id)
    assert (mail.link, mail.html, mail.text) == ("", "", "")
