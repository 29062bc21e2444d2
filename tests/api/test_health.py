"""Platform routes: liveness, readiness (Temporal and the database) and Prometheus metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from api.app import create_app
from invites.db.engine import create_engine
from invites.db.store import Store
from tests.support.api import Api, serve

# Nothing listens here: connections are refused at once.
CLOSED = "127.0.0.1:1"


@contextlib.asynccontextmanager
async def unreachable_database(api: Api) -> AsyncIterator[None]:
    """Point the running app's store at a PostgreSQL that does not answer (a stopped server)."""
    services = api.app.state.services
    healthy, engine = services.store, create_engine(f"postgresql+psycopg://invites@{CLOSED}/invites")
    services.store = Store(engine)
    try:
        yield
    finally:
        services.store = healthy
        await engine.dispose()


async def test_healthz_answers_while_the_process_lives(api: Api):
    response = await api.http.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_is_200_when_temporal_and_the_database_answer(api: Api):
    response = await api.http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"temporal": "ok", "database": "ok"}}


async def test_readyz_is_503_when_the_database_is_unreachable(api: Api):
    async with unreachable_database(api):
        response = await api.http.get("/readyz")
        assert response.status_code == 503
        assert response.json() == {
            "status": "not_ready",
            "checks": {"temporal": "ok", "database": "unavailable"},
        }
        assert (await api.http.get("/healthz")).status_code == 200  # alive, just not ready
    assert (await api.http.get("/readyz")).status_code == 200  # and ready again once it answers


async def test_readyz_is_503_when_temporal_is_unreachable(api: Api):
    dead = await Client.connect(CLOSED, lazy=True, data_converter=pydantic_data_converter)
    app = create_app(api.stack.settings, temporal=dead)  # starts although Temporal is down
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        assert (await http.get("/healthz")).status_code == 200
        response = await http.get("/readyz")
        assert response.status_code == 503
        assert response.json() == {
            "status": "not_ready",
            "checks": {"temporal": "unavailable", "database": "ok"},
        }


@contextlib.asynccontextmanager
async def black_hole(name: str, events: list[str]) -> AsyncIterator[str]:
    """A TCP port that accepts connections and never answers (a hung server); each connection
    is noted in `events` as `connected <name>`."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        events.append(f"connected {name}")
        held.append(writer)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        for writer in held:
            writer.close()
        server.close()


class Noted(logging.Handler):
    """Notes each log message in `events`."""

    def __init__(self, events: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.events = events

    def emit(self, record: logging.LogRecord) -> None:
        self.events.append(record.getMessage())


async def test_readyz_checks_both_side_by_side_and_is_503_when_both_hang(api: Api):
    events: list[str] = []
    log = logging.getLogger("invites.api")
    noted = Noted(events)
    log.addHandler(noted)
    try:
        async with black_hole("temporal", events) as temporal, black_hole("database", events) as database:
            hung = await Client.connect(temporal, lazy=True, data_converter=pydantic_data_converter)
            app = create_app(api.stack.settings, temporal=hung)
            async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
                engine = create_engine(f"postgresql+psycopg://invites@{database}/invites")
                app.state.services.store = Store(engine)
                response = await http.get("/readyz")
                await engine.dispose()
    finally:
        log.removeHandler(noted)
    assert response.status_code == 503
    assert response.json()["checks"] == {"temporal": "unavailable", "database": "unavailable"}
    # Each check is bounded (the answer came although neither server ever answers), and they
    # run side by side: both servers were reached before either check gave up.
    gave_up = [i for i, event in enumerate(events) if event.startswith("readiness:")]
    assert len(gave_up) == 2, events
    assert set(events[: gave_up[0]]) == {"connected temporal", "connected database"}, events


async def test_metrics_count_requests_by_route_template_never_by_raw_path(api: Api):
    created = await api.created("metrics@example.com")
    await api.stack.sent(api.stack.handles[-1])
    token = api.stack.links("metrics@example.com")[-1]
    assert (await api.http.get(f"/i/{token}")).status_code == 302
    assert (await api.http.get(f"/v1/invitations/{created['id']}", headers=api.key)).status_code == 200
    assert (await api.http.get(f"/no/such/page/{token}")).status_code == 404

    response = await api.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    metrics = response.text
    assert 'invites_http_requests_total{method="GET",route="/i/{token}",status="302"} 1.0' in metrics
    assert (
        'invites_http_requests_total{method="GET",route="/v1/invitations/{invitation_id}",status="200"} 1.0'
        in metrics
    )
    assert 'invites_http_requests_total{method="POST",route="/v1/invitations",status="201"} 1.0' in metrics
    assert 'invites_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in metrics
    assert 'invites_http_request_duration_seconds_count{method="GET",route="/i/{token}"} 1.0' in metrics
    assert token not in metrics
    assert created["id"] not in metrics
    assert "metrics@example.com" not in metrics


async def test_metrics_count_redemptions_by_result(api: Api):
    await api.created("redeem@example.com")
    await api.stack.sent(api.stack.handles[-1])
    token = api.stack.links("redeem@example.com")[-1]
    user = api.stack.auth0.create_user("redeem@example.com")
    mismatch = await api.webhook(token, {"user_id": "auth0|someone-else", "email": "else@example.com"})
    assert mismatch.status_code == 409
    accepted = await api.webhook(token, {"user_id": user["user_id"], "email": "redeem@example.com"})
    assert accepted.status_code == 200

    metrics = (await api.http.get("/metrics")).text
    assert 'invites_redemptions_total{result="accepted"} 1.0' in metrics
    assert 'invites_redemptions_total{result="email_mismatch"} 1.0' in metrics
    assert token not in metrics


@pytest.mark.parametrize(
    ("env", "token", "header", "status"),
    [
        ("development", None, None, 200),
        ("production", None, None, 404),  # off unless a scrape token is set
        ("production", "scrape-token-0123456789abcdef", None, 401),
        ("production", "scrape-token-0123456789abcdef", "Bearer wrong", 401),
        ("production", "scrape-token-0123456789abcdef", "Bearer scrape-token-0123456789abcdef", 200),
        ("development", "scrape-token-0123456789abcdef", None, 401),  # set: asked for everywhere
    ],
)
async def test_metrics_need_the_scrape_token_when_set_and_are_off_in_production_without_one(
    api: Api, env: str, token: str | None, header: str | None, status: int
):
    settings = api.stack.settings.model_copy(
        update={"env": env, "metrics_token": SecretStr(token) if token else None}
    )
    async with (
        serve(create_app(settings, temporal=api.stack.client)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        response = await http.get("/metrics", headers={"Authorization": header} if header else {})
    assert response.status_code == status
    if status == 200:
        assert "invites_http_requests_total" in response.text
