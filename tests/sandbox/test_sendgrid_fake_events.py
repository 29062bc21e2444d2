"""The fake SendGrid reports each mail to an Event Webhook as SendGrid does: signed posts that the
`sendgrid` package's own helper verifies, retried until the receiver takes them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec
from sendgrid import SendGridAPIClient
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.mail import CustomArg, Mail

from invites.settings import DEV_SENDGRID_EVENT_PUBLIC_KEY
from sandbox.sendgrid_api import SendGridFake
from sandbox.sendgrid_events import SIGNATURE, TIMESTAMP, dev_private_key, public_key_b64
from sandbox.server import FakeServer


class Receiver:
    """An Event Webhook endpoint that keeps what it is sent; answers `statuses` in turn, then 200."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.posts: list[tuple[bytes, dict[str, str]]] = []
        self.statuses = list(statuses or [])

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append((await request.read(), dict(request.headers)))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/events", self.handle)
        return app

    def events(self) -> list[dict[str, Any]]:
        return [e for body, _ in self.posts for e in json.loads(body)]


def _mail(to: str, seq: int = 0) -> Mail:
    mail = Mail(from_email="invites@example.com", to_emails=to, subject="Hi", html_content="<p>hi</p>")
    mail.custom_arg = [CustomArg("invitation_id", "inv_01"), CustomArg("seq", str(seq))]
    return mail


async def _until(check: Any, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


def test_the_dev_key_pair_is_the_one_the_settings_name() -> None:
    assert public_key_b64(dev_private_key()) == DEV_SENDGRID_EVENT_PUBLIC_KEY


async def test_each_mail_is_reported_processed_then_delivered_in_a_signed_post() -> None:
    receiver = Receiver()
    key = ec.generate_private_key(ec.SECP256R1())
    async with FakeServer(receiver.app()) as events_url:
        fake = SendGridFake(api_key="SG.k", events_url=f"{events_url}/events", event_key=key)
        async with fake.serve() as url:
            await asyncio.to_thread(SendGridAPIClient("SG.k", host=url).send, _mail("ann@example.com", seq=2))
            await _until(lambda: receiver.posts)

    (body, headers) = receiver.posts[0]
    verifier = EventWebhook(public_key_b64(key))
    assert verifier.verify_signature(body.decode(), headers[SIGNATURE], headers[TIMESTAMP])
    assert not EventWebhook(DEV_SENDGRID_EVENT_PUBLIC_KEY).verify_signature(
        body.decode(), headers[SIGNATURE], headers[TIMESTAMP]
    )
    processed, delivered = json.loads(body)
    assert (processed["event"], delivered["event"]) == ("processed", "delivered")
    assert (delivered["invitation_id"], delivered["seq"], delivered["email"]) == (
        "inv_01",
        "2",
        "ann@example.com",
    )
    assert processed["sg_event_id"] != delivered["sg_event_id"]


async def test_a_bouncing_address_and_the_reserved_ones_bounce_or_drop() -> None:
    receiver = Receiver()
    async with FakeServer(receiver.app()) as events_url:
        fake = SendGridFake(api_key="SG.k", events_url=f"{events_url}/events")
        fake.bounce("gone@example.com")
        async with fake.serve() as url:
            client = SendGridAPIClient("SG.k", host=url)
            for to in ("gone@example.com", "bounce@example.org", "drop@example.org"):
                await asyncio.to_thread(client.send, _mail(to))
            await _until(lambda: len(receiver.posts) == 3)

    outcomes = {e["email"]: e for e in receiver.events() if e["event"] != "processed"}
    assert outcomes["gone@example.com"]["event"] == "bounce"
    assert outcomes["gone@example.com"]["type"] == "bounce"  # hard, not `blocked`
    assert outcomes["bounce@example.org"]["event"] == "bounce"
    assert outcomes["drop@example.org"]["event"] == "dropped"


async def test_another_process_scripts_bouncing_addresses_over_http() -> None:
    receiver = Receiver()
    async with FakeServer(receiver.app()) as events_url:
        fake = SendGridFake(api_key="SG.k", events_url=f"{events_url}/events")
        async with fake.serve() as url, httpx.AsyncClient(base_url=url) as http:
            assert (await http.post("/__fake/bounces", json={"addresses": "x"})).status_code == 400
            scripted = await http.post("/__fake/bounces", json={"addresses": ["Later@Example.com"]})
            assert scripted.json() == {"bouncing": ["later@example.com"]}
            await asyncio.to_thread(SendGridAPIClient("SG.k", host=url).send, _mail("later@example.com"))
            await _until(lambda: receiver.posts)
    assert [e["event"] for e in receiver.events()] == ["processed", "bounce"]


async def test_a_post_the_receiver_refuses_is_retried_with_the_same_events() -> None:
    receiver = Receiver(statuses=[503, 500])
    async with FakeServer(receiver.app()) as events_url:
        fake = SendGridFake(api_key="SG.k", events_url=f"{events_url}/events")
        assert fake.events is not None
        fake.events.retry_delays = (0.05, 0.05, 0.05)
        async with fake.serve() as url:
            await asyncio.to_thread(SendGridAPIClient("SG.k", host=url).send, _mail("ann@example.com"))
            await _until(lambda: len(receiver.posts) == 3)

    assert [status for status, _ in fake.events.posts] == [503, 500, 200]
    assert json.loads(receiver.posts[0][0]) == json.loads(receiver.posts[2][0])
