"""Rotating the webhook secret without a window: during the rotation the API accepts messages
signed with the new secret (INVITES_WEBHOOK_SECRET) and with the previous ones
(INVITES_WEBHOOK_PREVIOUS_SECRETS); anything else stays 401."""

from __future__ import annotations

import base64
import json
import os
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr
from standardwebhooks import Webhook

from invites.settings import Settings

from .conftest import Api


def whsec() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


NEW, OLD, UNRELATED = whsec(), whsec(), whsec()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"webhook_secret": SecretStr(NEW), "webhook_previous_secrets": SecretStr(f" {OLD} ,")}


def signed_with(secret: str, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    msg_id, at = f"msg_{uuid.uuid4().hex}", datetime.now(UTC).replace(microsecond=0)
    return raw, {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, raw.decode()),
        "content-type": "application/json",
    }


async def test_the_new_and_the_previous_secret_are_accepted_and_no_other(api: Api):
    answers = {}
    for name, secret in (("unrelated", UNRELATED), ("old", OLD), ("new", NEW)):
        email = f"rotate-{name}@example.com"
        await api.created(email)
        await api.stack.sent(api.stack.handles[-1])
        user = api.stack.auth0.create_user(email)
        body = {
            "type": "invitation.redeem",
            "invitation": api.stack.links(email)[-1],
            "user": {"user_id": user["user_id"], "email": email, "email_verified": False},
            "connection": {"name": "Username-Password-Authentication", "strategy": "auth0"},
            "is_new_user": True,
        }
        raw, headers = signed_with(secret, body)
        answers[name] = await api.http.post("/v1/webhooks/auth0", content=raw, headers=headers)

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
