"""The API over real HTTP: uvicorn on an ephemeral port of 127.0.0.1 in front of a `Stack`, and a
client that speaks as the funnel, as ops and as the Action."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from api.app import create_app
from invites.creation import Clock, wall_clock
from invites.invitations import handle_for
from invites.settings import DEV_API_KEY
from tests.support.stack import Stack
from tests.support.webhooks import WEBHOOK, Delivery, redeem_body, signed_headers

SIGNIN = "http://signin.test/authorize?client_id=funnel-app&redirect_uri=http%3A%2F%2Fapp.test%2Fcallback"


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Run the app under uvicorn on an ephemeral port, lifespan included."""
    # log_config=None: uvicorn must not reconfigure the process's loggers (its default config
    # detaches uvicorn.access from the root logger, which later log-capturing tests rely on).
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class Api:
    stack: Stack
    app: FastAPI
    http: httpx.AsyncClient
    url: str

    @property
    def key(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {DEV_API_KEY}"}

    @property
    def secret(self) -> str:
        """The webhook secret the Action signs with."""
        return self.stack.settings.webhook_secret.get_secret_value()

    def user_token(self, sub: str, permissions: list[str] | None = None, **kwargs: Any) -> str:
        s = self.stack.settings
        return self.stack.auth0.signing.access_token(
            issuer=s.auth0_issuer, audience=s.api_audience, subject=sub, permissions=permissions, **kwargs
        )

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def create(
        self, email: str = "ada@example.com", headers: dict[str, str] | None = None, **body: Any
    ) -> httpx.Response:
        response = await self.http.post(
            "/v1/invitations", json={"email": email, **body}, headers={**self.key, **(headers or {})}
        )
        if response.status_code in (200, 201):  # so the test's end terminates what it left open
            self.stack.handles.append(handle_for(self.stack.client, response.json()["id"]))
        return response

    async def created(self, email: str = "ada@example.com", **body: Any) -> dict[str, Any]:
        response = await self.create(email, **body)
        assert response.status_code == 201, response.text
        return response.json()

    async def pending(self, email: str = "ada@example.com", **body: Any) -> tuple[dict[str, Any], str]:
        """Create an invitation over HTTP and wait for its mail; returns it and the mailed token."""
        created = await self.created(email, **body)
        await self.stack.sent(self.stack.handles[-1])
        return created, self.stack.links(email)[-1]

    def sign(self, body: bytes, *, msg_id: str | None = None, at: datetime | None = None) -> dict[str, str]:
        return signed_headers(self.secret, body, msg_id=msg_id, at=at)

    async def webhook(self, token: str, user: dict[str, Any], **kwargs: Any) -> httpx.Response:
        """The Action's redeem for `user` logging in with `token`; `kwargs` go to `sign`."""
        raw = json.dumps(redeem_body(token, user)).encode()
        return await self.http.post(WEBHOOK, content=raw, headers=self.sign(raw, **kwargs))

    def delivery(self, token: str, user: dict[str, Any], **body: Any) -> Delivery:
        return Delivery.signed(self.secret, redeem_body(token, user, **body))


@contextlib.asynccontextmanager
async def api_for(
    stack: Stack, *, wired_as_production: bool = False, clock: Clock = wall_clock
) -> AsyncIterator[Api]:
    """The app over real HTTP in front of `stack` (no worker: the caller runs `stack.worker()`).

    `wired_as_production`: the app builds its own Temporal client from the settings (as
    `invites api` does) instead of sharing the stack's. The HTTP client allows a burst of
    hundreds of connections at once.
    """
    settings = stack.settings.model_copy(
        update={"auth0_issuer": f"{stack.settings.auth0_base_url}/", "signin_url": SIGNIN}
    )
    stack = dataclasses.replace(stack, settings=settings)
    temporal = None if wired_as_production else stack.client
    app = create_app(settings, temporal=temporal, clock=clock)
    # Idle connections are dropped before uvicorn's 5 s keep-alive closes them from its side:
    # reusing one the server is closing at that moment fails as a network error.
    limits = httpx.Limits(max_connections=300, max_keepalive_connections=300, keepalive_expiry=2)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        yield Api(stack, app, http, url)
