"""The API over real HTTP: uvicorn on 127.0.0.1, the time-skipping Temporal server behind it,
a production-wired worker, and the fakes (Auth0 also signs the access tokens, as a tenant)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from standardwebhooks import Webhook
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from invites.invitations import handle_for
from invites.settings import DEV_API_KEY
from tests.workflows.conftest import Stack, _stack, terminate_open

ALL = ["create:invitations", "read:invitations", "manage:invitations"]
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

    def sign(
        self, body: dict[str, Any] | bytes, *, msg_id: str | None = None, at: datetime | None = None
    ) -> dict:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
        at = (at or datetime.now(UTC)).replace(microsecond=0)
        secret = self.stack.settings.webhook_secret.get_secret_value()
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, at, raw.decode()),
            "content-type": "application/json",
        }

    async def webhook(self, token: str, user: dict[str, Any], **kwargs: Any) -> httpx.Response:
        body = {
            "type": "invitation.redeem",
            "invitation": token,
            "user": user,
            "connection": {"name": "Username-Password-Authentication", "strategy": "auth0"},
            "is_new_user": True,
        }
        raw = json.dumps(body).encode()
        return await self.http.post("/v1/webhooks/auth0", content=raw, headers=self.sign(raw, **kwargs))


@pytest.fixture
async def api(
    ts_env: WorkflowEnvironment, tmp_path: Path, settings_overrides: dict[str, Any]
) -> AsyncIterator[Api]:
    async with _stack(ts_env, tmp_path, settings_overrides) as base:
        auth0_url = base.settings.auth0_base_url
        settings = base.settings.model_copy(update={"auth0_issuer": f"{auth0_url}/", "signin_url": SIGNIN})
        stack = dataclasses.replace(base, settings=settings)
        app = create_app(settings, temporal=stack.client, clock=stack.now)
        async with serve(app) as url, stack.worker(), httpx.AsyncClient(base_url=url, timeout=30) as http:
            yield Api(stack, app, http, url)
            # Before the worker stops: nothing left running, no activity cut off mid-flight.
            await terminate_open(stack)
