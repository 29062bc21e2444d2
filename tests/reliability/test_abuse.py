"""Abuse: a thousand forged links, against the invitee's page and the Action's webhook.

The API under attack has no Temporal behind it: its client points at a closed port, so any
Temporal call would answer 503 (the control requests show it does). Every forged token must be
refused before that (404), every bad signature too (401), counted by the app's own
`invites_rejected_before_temporal_total`; and the abuse leaves no trace that changes the next
answer: the same control requests after it reach for Temporal exactly as before (no lockout).
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from invites.ids import PREFIX, new_invitation_id
from invites.settings import Settings
from invites.tokens import InvalidToken, TokenSigner
from tests.support.api import serve
from tests.support.network import free_port
from tests.support.webhooks import WEBHOOK, random_secret, redeem_body, signed_headers

pytestmark = pytest.mark.slow

FORGED = 1000
URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
USER = {"user_id": "auth0|mallory", "email": "mallory@example.com", "email_verified": True}


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def forged_tokens(signer: TokenSigner, rng: random.Random, count: int) -> list[str]:
    """Tokens an attacker can make: random strings, right-shaped tokens under guessed keys or
    key ids, real tokens altered, truncated, extended, re-MACed or re-versioned. Each one is
    checked to be refused by the real keyring, so "forged" is never a matter of luck."""

    def invitation_id() -> str:
        return PREFIX + "0" + "".join(rng.choice("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for _ in range(25))

    def real() -> str:
        return signer.create(invitation_id(), rng.randrange(4))

    guessed_key = TokenSigner([("dev1", rng.randbytes(32))])
    unknown_kid = TokenSigner([("k9", rng.randbytes(32))])

    def altered() -> str:
        token = list(real())
        i = rng.randrange(len(token))
        token[i] = rng.choice(URLSAFE.replace(token[i], ""))
        return "".join(token)

    def new_mac() -> str:
        raw = unb64(real())
        return b64(raw[:-16] + rng.randbytes(16))

    def new_version() -> str:
        raw = unb64(real())
        return b64(bytes([rng.choice([0, 2, 255])]) + raw[1:])

    makers: list[Callable[[], str]] = [
        lambda: "".join(rng.choice(URLSAFE) for _ in range(rng.randint(1, 120))),
        lambda: guessed_key.create(invitation_id(), rng.randrange(2**32)),
        lambda: unknown_kid.create(invitation_id(), 0),
        altered,
        lambda: real()[: -rng.randint(1, 30)],
        lambda: real() + "".join(rng.choice(URLSAFE) for _ in range(rng.randint(1, 20))),
        new_mac,
        new_version,
    ]
    tokens = [makers[i % len(makers)]() for i in range(count)]
    for token in tokens:
        with pytest.raises(InvalidToken):
            signer.verify(token)
    return tokens


def bad_signatures(secret: str, rng: random.Random) -> list[Callable[[bytes], tuple[bytes, dict[str, str]]]]:
    """Ways a webhook's signature is wrong: each takes a body, returns what is posted."""

    def signed(body: bytes, *, key: str = secret, at: datetime | None = None) -> dict[str, str]:
        return signed_headers(key, body, at=at)

    other_secret = random_secret()
    return [
        lambda body: (body, signed(body, key=other_secret)),
        lambda body: (body.replace(b"mallory", b"mal1ory"), signed(body)),  # body changed after signing
        lambda body: (body, signed(body, at=datetime.now(UTC) - timedelta(minutes=10))),  # replayed late
        lambda body: (body, signed(body, at=datetime.now(UTC) + timedelta(minutes=10))),
        lambda body: (body, {**signed(body), "webhook-signature": "v1," + b64(rng.randbytes(32)) + "="}),
        lambda body: (body, {k: v for k, v in signed(body).items() if k != "webhook-signature"}),
    ]


async def test_a_thousand_forged_links_are_refused_before_temporal_and_lock_nobody_out(tmp_path: Path):
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/invites.db",
        temporal_address=f"127.0.0.1:{free_port()}",  # nothing listens there
        # One client sends all of it here; the per-client limits have tests of their own
        # (tests/api/test_limits.py), and this one is about what each request costs.
        rate_limit_links="100000/minute",
        rate_limit_auth_failures="100000/minute",
    )
    app = create_app(settings)
    signer = TokenSigner(settings.token_keyring)
    secret = settings.webhook_secret.get_secret_value()
    rng = random.Random(20240601)
    tokens = forged_tokens(signer, rng, FORGED)
    wrong_signatures = bad_signatures(secret, rng)
    genuine = signer.create(new_invitation_id(), 0)
    control = json.dumps(redeem_body(genuine, USER)).encode()

    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:

        async def controls() -> tuple[int, int]:
            """A genuine token reaches for Temporal, which is unreachable here (503)."""
            page = await http.get(f"/i/{genuine}")
            hook = await http.post(WEBHOOK, content=control, headers=signed_headers(secret, control))
            return page.status_code, hook.status_code

        assert await controls() == (503, 503)

        for i, token in enumerate(tokens):
            page = await http.get(f"/i/{token}")
            assert page.status_code == 404, (token, page.status_code)
            assert "This link is not valid" in page.text

            body = json.dumps(redeem_body(token, USER)).encode()
            hook = await http.post(WEBHOOK, content=body, headers=signed_headers(secret, body))
            assert (hook.status_code, hook.json()["error"]["code"]) == (404, "invalid_link"), token

            content, headers = wrong_signatures[i % len(wrong_signatures)](body)
            refused = await http.post(WEBHOOK, content=content, headers=headers)
            assert (refused.status_code, refused.json()["error"]["code"]) == (401, "invalid_signature")

        # After the abuse the genuine link is handled exactly as before it: nobody is locked out.
        assert await controls() == (503, 503)
        metrics = (await http.get("/metrics")).text

    rejected = samples(metrics, "invites_rejected_before_temporal_total")
    assert rejected == {
        (("reason", "forged_token"), ("route", "link")): FORGED,
        (("reason", "forged_token"), ("route", "webhook")): FORGED,
        (("reason", "bad_signature"), ("route", "webhook")): FORGED,
    }
    # The control requests are the only ones that reached for Temporal.
    answered = samples(metrics, "invites_http_requests_total")
    assert sum(n for labels, n in answered.items() if ("status", "503") in labels) == 4


def samples(exposition: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """`{sorted labels: value}` of one metric in a Prometheus text exposition."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name
    }
