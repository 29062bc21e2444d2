"""The Action's webhook message: its body, its Standard Webhooks signature, and a signed delivery
that a retry resends byte for byte."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

WEBHOOK = "/v1/webhooks/auth0"


def redeem_body(token: str, user: dict[str, Any], *, is_new_user: bool = True) -> dict[str, Any]:
    """What the Action posts after a login that carried the link `token`."""
    return {
        "type": "invitation.redeem",
        "invitation": token,
        "user": user,
        "connection": {"name": "Username-Password-Authentication", "strategy": "auth0"},
        "is_new_user": is_new_user,
    }


def signed_headers(
    secret: str, raw: bytes, *, msg_id: str | None = None, at: datetime | None = None
) -> dict[str, str]:
    """Standard Webhooks headers for `raw` under `secret`, sent `at` (now by default)."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = (at or datetime.now(UTC)).replace(microsecond=0)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, raw.decode()),
        "content-type": "application/json",
    }


def random_secret() -> str:
    """A `whsec_` secret nobody else knows."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def assert_unavailable(response: httpx.Response) -> None:
    """503 `unavailable` with a `Retry-After` in seconds: the caller knows to come back."""
    assert response.status_code == 503, response.text
    assert response.headers.get("retry-after", "").isdigit(), response.headers
    assert response.json()["error"]["code"] == "unavailable", response.text


@dataclass
class Delivery:
    """One signed webhook message, kept so that a retry resends the very same bytes and id
    (as the Action does); every answer is recorded."""

    content: bytes
    headers: dict[str, str]
    answers: list[httpx.Response] = field(default_factory=list)

    @classmethod
    def signed(cls, secret: str, body: dict[str, Any]) -> Delivery:
        content = json.dumps(body).encode()
        return cls(content, signed_headers(secret, content))

    async def send(self, http: httpx.AsyncClient) -> httpx.Response:
        response = await http.post(WEBHOOK, content=self.content, headers=self.headers)
        self.answers.append(response)
        return response

    @property
    def response(self) -> httpx.Response:
        """The latest answer."""
        return self.answers[-1]

    async def until_final(self, http: httpx.AsyncClient, attempts: int = 20) -> httpx.Response:
        """Resend while the API answers 503 (after the `Retry-After` it names): the Action's retry."""
        for _ in range(attempts):
            if self.response.status_code != 503:
                return self.response
            assert_unavailable(self.response)
            await asyncio.sleep(float(self.response.headers["retry-after"]))
            await self.send(http)
        raise AssertionError(f"still 503 after {attempts} attempts: {self.response.text}")
