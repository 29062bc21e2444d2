"""Rotating the webhook secret without a window: during the rotation the API accepts messages
signed with the new secret (INVITES_WEBHOOK_SECRET) and with the previous ones
(INVITES_WEBHOOK_PREVIOUS_SECRETS); anything else stays 401."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from invites.settings import Settings
from tests.support.api import Api
from tests.support.auth0 import account
from tests.support.webhooks import Delivery, random_secret, redeem_body

NEW, OLD, UNRELATED = random_secret(), random_secret(), random_secret()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"webhook_secret": SecretStr(NEW), "webhook_previous_secrets": SecretStr(f" {OLD} ,")}


async def test_the_new_and_the_previous_secret_are_accepted_and_no_other(api: Api):
    answers = {}
    for name, secret in (("unrelated", UNRELATED), ("old", OLD), ("new", NEW)):
        email = f"rotate-{name}@example.com"
        _, token = await api.pending(email)
        delivery = Delivery.signed(secret, redeem_body(token, account(api.stack.auth0, email)))
        answers[name] = await delivery.send(api.http)

    assert answers["unrelated"].status_code == 401, answers["unrelated"].text
    assert answers["unrelated"].json()["error"]["code"] == "invalid_signature"
    for name in ("old", "new"):
        assert answers[name].status_code == 200, answers[name].text
        assert answers[name].json()["result"] == "accepted"


def test_settings_list_the_current_secret_first_and_refuse_a_malformed_one():
    previous = SecretStr(f"{OLD},{UNRELATED}")
    settings = Settings(webhook_secret=SecretStr(NEW), webhook_previous_secrets=previous)
    assert settings.webhook_secrets == [NEW, OLD, UNRELATED]
    assert Settings(webhook_secret=SecretStr(NEW)).webhook_secrets == [NEW]
    with pytest.raises(ValueError, match="INVITES_WEBHOOK_PREVIOUS_SECRETS"):
        Settings(webhook_secret=SecretStr(NEW), webhook_previous_secrets=SecretStr("whsec_not base64!"))
