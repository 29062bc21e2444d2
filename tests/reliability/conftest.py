"""Harness for the reliability tests: process faults, dependency outages, concurrency, abuse.

Built from the suite's own pieces (`tests.workflows.conftest._stack`, `tests.api.conftest.serve`
and `Api`, the worker subprocess of `tests/devserver`), plus what only these tests need: a dev
server this test owns (to stop and restart it), a clock that follows the time-skipping server,
a TCP proxy in front of PostgreSQL that the test can cut, and signed webhook deliveries that a
retry resends byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from invites.creation import Clock, wall_clock
from invites.db.engine import create_engine
from invites.db.migrate import upgrade
from invites.temporal import SEARCH_ATTRIBUTES
from tests.api.conftest import SIGNIN, Api, serve
from tests.conftest import binary
from tests.workflows.conftest import Stack, _stack

POSTGRES_URL = os.environ.get("INVITES_TEST_POSTGRES_URL")
ASSIGN_ROLES = "POST /api/v2/users/{id}/roles"
WEBHOOK = "/v1/webhooks/auth0"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Temporal ----------------------------------------------------------------------------------


async def start_dev_server(port: int, database: Path) -> WorkflowEnvironment:
    """`temporal server start-dev` on a fixed port with its state in `database`, as `dev_env`
    starts it. Started again with the same port and file, it is the same server."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        dev_server_database_filename=str(database),
        port=port,
        data_converter=pydantic_data_converter,
        search_attributes=(),
        dev_server_extra_args=[
            arg
            for name, kind in SEARCH_ATTRIBUTES.items()
            for arg in ("--search-attribute", f"{name}={kind}")
        ],
        ui=False,
    )


@pytest.fixture
async def dev_stack(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Stack]:
    """Fresh fakes, store and task queue on the shared dev server; the settings name the server,
    so a worker started from them in another process reaches it."""
    address = dev_env.client.service_client.config.target_host
    async with _stack(dev_env, tmp_path, {"temporal_address": address}) as stack:
        yield stack


class ServerClock:
    """The time-skipping server's clock, for a fake that runs in its own thread.

    A fake's `for_seconds` / `until` is measured on its clock; with wall time, "ten minutes"
    would mean ten real minutes while the server skips hours in milliseconds. This clock asks
    the test server for its current time (the same time the workflows see) through the test's
    event loop, so a fault window lasts exactly as long as the workflows experience it.
    Callable only from another thread (the fake's): the test's loop must stay free to answer.
    """

    def __init__(self, env: WorkflowEnvironment) -> None:
        self._env = env
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    async def now(self) -> float:
        return (await self._env.get_current_time()).timestamp()

    def __call__(self) -> float:
        if threading.get_ident() == self._loop_thread:
            raise RuntimeError("ServerClock() blocks: from the test's loop, await ServerClock.now()")
        return asyncio.run_coroutine_threadsafe(self.now(), self._loop).result(timeout=10)


# --- the API -------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def api_for(
    stack: Stack, *, wired_as_production: bool = False, clock: Clock | None = None
) -> AsyncIterator[Api]:
    """The app over real HTTP in front of `stack`.

    `wired_as_production`: the app builds its own Temporal client from the settings (as
    `invites api` does) instead of sharing the stack's. The HTTP client allows a burst of
    hundreds of connections at once.
    """
    settings = stack.settings.model_copy(
        update={"auth0_issuer": f"{stack.settings.auth0_base_url}/", "signin_url": SIGNIN}
    )
    stack = dataclasses.replace(stack, settings=settings)
    temporal = None if wired_as_production else stack.client
    app = create_app(settings, temporal=temporal, clock=clock or wall_clock)
    # Idle connections are dropped before uvicorn's 5 s keep-alive closes them from its side:
    # reusing one the server is closing at that moment fails as a network error.
    limits = httpx.Limits(max_connections=300, max_keepalive_connections=300, keepalive_expiry=2)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        yield Api(stack, app, http, url)


@dataclass
class Delivery:
    """One signed webhook message, kept so that a retry resends the very same bytes and id
    (as the Action does); every answer is recorded."""

    content: bytes
    headers: dict[str, str]
    answers: list[httpx.Response] = field(default_factory=list)

    async def send(self, http: httpx.AsyncClient) -> httpx.Response:
        response = await http.post(WEBHOOK, content=self.content, headers=self.headers)
        self.answers.append(response)
        return response

    @property
    def response(self) -> httpx.Response:
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


def redeem_body(token: str, user: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "invitation.redeem",
        "invitation": token,
        "user": user,
        "connection": {"name": "Username-Password-Authentication", "strategy": "auth0"},
        "is_new_user": True,
    }


def delivery(api: Api, token: str, user: dict[str, Any]) -> Delivery:
    content = json.dumps(redeem_body(token, user)).encode()
    return Delivery(content, api.sign(content, msg_id=f"msg_{uuid.uuid4().hex}"))


def account(api: Api, email: str) -> dict[str, Any]:
    """A user in the fake tenant, as the Action's `user` block describes it."""
    user = api.stack.auth0.create_user(email)
    return {"user_id": user["user_id"], "email": email, "email_verified": True}


def assert_unavailable(response: httpx.Response) -> None:
    """503 `unavailable` with a `Retry-After` in seconds: the caller knows to come back."""
    assert response.status_code == 503, response.text
    assert response.headers.get("retry-after", "").isdigit(), response.headers
    assert response.json()["error"]["code"] == "unavailable", response.text


# --- PostgreSQL ---------------------------------------------------------------------------------


class TcpProxy:
    """127.0.0.1:<port> forwarding to a target; `down()` refuses new connections and cuts the
    open ones (what a database crash or a network partition looks like to its clients), `up()`
    listens again on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()  # stop listening first, then cut what is open
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()
        if server is not None:
            await server.wait_closed()

    async def _forward(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            upstream_r, upstream_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.transport.abort()
            return
        self._open |= {client_w, upstream_w}
        try:
            await asyncio.gather(_pipe(client_r, upstream_w), _pipe(upstream_r, client_w))
        finally:
            for writer in (client_w, upstream_w):
                self._open.discard(writer)
                writer.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()


async def _postgres_admin(statement: str) -> None:
    # CREATE / DROP DATABASE cannot run inside a transaction.
    admin = create_engine(POSTGRES_URL or "")
    try:
        async with admin.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(statement))
    finally:
        await admin.dispose()


@dataclass
class ProxiedDatabase:
    url: str  # through the proxy: what the API and the worker are given
    direct_url: str  # straight to PostgreSQL: what the test reads with
    proxy: TcpProxy


@pytest.fixture
async def proxied_postgres() -> AsyncIterator[ProxiedDatabase]:
    """A dedicated, migrated PostgreSQL database, reached through a proxy the test controls."""
    if not POSTGRES_URL:
        pytest.skip("INVITES_TEST_POSTGRES_URL is not set (see tests/db/conftest.py)")
    server = make_url(POSTGRES_URL)
    name = f"invites_rel_{uuid.uuid4().hex[:12]}"
    await _postgres_admin(f'CREATE DATABASE "{name}"')
    proxy = TcpProxy(server.host or "127.0.0.1", server.port or 5432)
    await proxy.up()
    direct = server.set(database=name)
    via_proxy = direct.set(host="127.0.0.1", port=proxy.port)
    try:
        await upgrade(direct.render_as_string(hide_password=False))
        yield ProxiedDatabase(
            via_proxy.render_as_string(hide_password=False),
            direct.render_as_string(hide_password=False),
            proxy,
        )
    finally:
        await proxy.down()
        await _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
