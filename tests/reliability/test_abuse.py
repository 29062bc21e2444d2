"""Abuse: a thousand forged links, against the invitee's page and the Action's webhook.

The API under attack has no Temporal behind it: its client points at a closed port, so any
Temporal call would answer 503 (the control requests show it does). Every forged token must be
refused before that (404), every bad signature too (401), counted by the app's own
`invites_rejected_before_temporal_total`, and the answers must not slow down as the abuse goes on.
"""

from __future__ import annotations

import base64
import json
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from standardwebhooks import Webhook

from api.app import create_app
from invites.ids import PREFIX, new_invitation_id
from invites.settings import Settings
from invites.tokens import InvalidToken, TokenSigner
from tests.api.conftest import serve

from .conftest import WEBHOOK, free_port, redeem_body

pytestmark = pytest.mark.slow

FORGED = 1000
WINDOW = 100  # requests at the start and at the end whose median latencies are compared
# Loose on purpose: "flat" means no growth with the number of requests seen (no per-token
# state, no lockout table, no leak), not a benchmark. The floor keeps sub-millisecond jitter
# of a fast first window from counting as growth.
MAX_SLOWDOWN = 3.0
LATENCY_FLOOR_S = 0.002
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
        msg_id, at = f"msg_{uuid.uuid4().hex}", (at or datetime.now(UTC)).replace(microsecond=0)
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(key).sign(msg_id, at, body.decode()),
            "content-type": "application/json",
        }

    other_secret = "whsec_" + base64.b64encode(rng.randbytes(32)).decode()
    return [
        lambda body: (body, signed(body, key=other_secret)),
        lambda body: (body.replace(b"mallory", b"mal1ory"), signed(body)),  # body changed after signing
        lambda body: (body, signed(body, at=datetime.now(UTC) - timedelta(minutes=10))),  # replayed late
        lambda body: (body, signed(body, at=datetime.now(UTC) + timedelta(minutes=10))),
        lambda body: (body, {**signed(body), "webhook-signature": "v1," + b64(rng.randbytes(32)) + "="}),
        lambda body: (body, {k: v for k, v in signed(body).items() if k != "webhook-signature"}),
    ]


async def test_a_thousand_forged_links_are_refused_before_temporal_in_flat_time(tmp_path: Path):
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/invites.db",
        temporal_address=f"127.0.0.1:{free_port()}",  # nothing listens there
    )
    app = create_app(settings)
    signer = TokenSigner(settings.token_keyring)
    secret = settings.webhook_secret.get_secret_value()
    rng = random.Random(20240601)
    tokens = forged_tokens(signer, rng, FORGED)
    wrong_signatures = bad_signatures(secret, rng)
    latencies: dict[str, list[float]] = {"link": [], "signed": [], "bad_signature": []}

    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:

        def sign(body: bytes) -> dict[str, str]:
            msg_id, at = f"msg_{uuid.uuid4().hex}", datetime.now(UTC).replace(microsecond=0)
            return {
                "webhook-id": msg_id,
                "webhook-timestamp": str(int(at.timestamp())),
                "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode()),
                "content-type": "application/json",
            }

        async def timed(kind: str, request: httpx.Request) -> httpx.Response:
            started = time.perf_counter()
            response = await http.send(request)
            latencies[kind].append(time.perf_counter() - started)
            return response

        # Control: a genuine token does reach for Temporal, which is unreachable here (503).
        genuine = signer.create(new_invitation_id(), 0)
        assert (await http.get(f"/i/{genuine}")).status_code == 503
        control = json.dumps(redeem_body(genuine, USER)).encode()
        assert (await http.post(WEBHOOK, content=control, headers=sign(control))).status_code == 503

        for i, token in enumerate(tokens):
            page = await timed("link", http.build_request("GET", f"/i/{token}"))
            assert page.status_code == 404, (token, page.status_code)
            assert "This link is not valid" in page.text

            body = json.dumps(redeem_body(token, USER)).encode()
            signed = http.build_request("POST", WEBHOOK, content=body, headers=sign(body))
            hook = await timed("signed", signed)
            assert (hook.status_code, hook.json()["error"]["code"]) == (404, "invalid_link"), token

            content, headers = wrong_signatures[i % len(wrong_signatures)](body)
            refused = await timed(
                "bad_signature", http.build_request("POST", WEBHOOK, content=content, headers=headers)
            )
            assert (refused.status_code, refused.json()["error"]["code"]) == (401, "invalid_signature")

        metrics = (await http.get("/metrics")).text

    rejected = samples(metrics, "invites_rejected_before_temporal_total")
    assert rejected == {
        (("reason", "forged_token"), ("route", "link")): FORGED,
        (("reason", "forged_token"), ("route", "webhook")): FORGED,
        (("reason", "bad_signature"), ("route", "webhook")): FORGED,
    }
    # The two control requests are the only ones that reached for Temporal.
    answered = samples(metrics, "invites_http_requests_total")
    assert sum(n for labels, n in answered.items() if ("status", "503") in labels) == 2

    for kind, seconds in latencies.items():
        first, last = statistics.median(seconds[:WINDOW]), statistics.median(seconds[-WINDOW:])
        assert last <= MAX_SLOWDOWN * max(first, LATENCY_FLOOR_S), (kind, first, last)


def samples(exposition: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """`{sorted labels: value}` of one metric in a Prometheus text exposition."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name
    }
