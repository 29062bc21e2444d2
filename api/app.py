"""The FastAPI app factory. One Temporal client, one database engine, one Auth0 client per
process, built in the lifespan and reached by routes through `api.deps`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.client import Client
from temporalio.service import RetryConfig

from api import docs_assets, errors, redaction
from api.auth import Authenticator
from api.limits import BodyLimit, RateLimits
from api.metrics import ApiMetrics, MetricsMiddleware
from api.routes import (
    codec,
    dev,
    funnel,
    health,
    link,
    me,
    ops,
    ops_page,
    sendgrid_events,
    stats,
    time_to_accept,
    webhook,
)
from api.services import Services
from invites.auth0 import Auth0Management
from invites.creation import Clock, wall_clock
from invites.db.engine import create_engine
from invites.db.migrate import upgrade
from invites.db.store import Store
from invites.settings import Settings, get_settings
from invites.temporal import build_temporal_client
from invites.tokens import TokenSigner

# The API answers within the Action's 5 s budget: give up retrying a busy or unreachable
# Temporal after 1.5 s and answer 503 with Retry-After (the SDK default retries for 10 s).
API_RETRY = RetryConfig(max_elapsed_time_millis=1500, max_retries=4)

DESCRIPTION = """
Durable invitations for Auth0. The funnel creates invitations (`POST /v1/invitations`), the
invitee opens `/i/{token}` from the mail, the Auth0 post-login Action reports the login to
`POST /v1/webhooks/auth0`, ops steer invitations under `/v1/invitations`, and the customer space
reads `GET /v1/me`. Errors are `{"error": {"code", "message"}}`.

Authenticate with `Authorization: Bearer <API key or Auth0 access token>` (or `X-API-Key`).
"""


def create_app(
    settings: Settings | None = None,
    *,
    temporal: Client | None = None,
    authenticator: Authenticator | None = None,
    clock: Clock = wall_clock,
) -> FastAPI:
    """Build the app. Tests pass their own Temporal client (a test server) and settings."""
    settings = settings or get_settings()
    metrics = ApiMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await upgrade(settings.database_url)
        engine = create_engine(settings.database_url)
        store = Store(engine)
        client = temporal or await build_temporal_client(settings, lazy=True, retry_config=API_RETRY)
        async with httpx.AsyncClient(timeout=settings.auth0_timeout) as http:
            app.state.services = Services(
                settings=settings,
                temporal=client,
                store=store,
                auth0=Auth0Management(settings, http),
                auth=authenticator or Authenticator(settings),
                signer=TokenSigner(settings.token_keyring),
                metrics=metrics,
                clock=clock,
            )
            try:
                yield
            finally:
                store.close()
                await engine.dispose()

    docs = settings.env == "development" if settings.api_docs is None else settings.api_docs
    app = FastAPI(
        title="invites",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        responses=errors.COMMON_RESPONSES,
        # /docs is served by api.docs_assets (Swagger UI from the API itself, no CDN); ReDoc,
        # another CDN page, is not served.
        docs_url=None,
        redoc_url=None,
    )
    if docs:
        docs_assets.install(app, title="invites")
    errors.install(app)
    redaction.install()

    @app.exception_handler(RuntimeError)
    async def _temporal_connect(_: Request, exc: RuntimeError) -> JSONResponse:
        # A lazily connected client raises RuntimeError("Failed client connect: ...") while
        # Temporal is down: that is an outage (503), not a bug.
        if str(exc).startswith("Failed client connect"):
            return errors.error_response(
                503,
                "unavailable",
                "Temporal is unreachable; retry shortly.",
                {"Retry-After": errors.RETRY_AFTER_S},
            )
        raise exc

    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(CodecCors, origins=settings.ui_origins)
    # Outermost: nothing unbounded is read, and a limited client is refused before anything.
    app.add_middleware(BodyLimit)
    app.add_middleware(
        RateLimits, links=settings.rate_limit_links, auth_failures=settings.rate_limit_auth_failures
    )
    for router in (
        funnel.router,
        link.router,
        webhook.router,
        sendgrid_events.router,
        stats.router,
        time_to_accept.router,
        ops.router,
        ops_page.router,  # the /ops page: static, its data from the routes above once signed in
        me.router,
        health.router,
        codec.router,
    ):
        app.include_router(router)
    if settings.env == "development":
        app.include_router(dev.router)  # demo pages: funnel form, outbox, customer space
    return app


class CodecCors:
    """CORS for the codec routes only, and only for the Temporal UI's origins: the UI calls them
    from the browser (with its credentials). No other route answers a cross-origin request."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self._app = app
        self._cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Namespace"],
            allow_credentials=True,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/codec/"):
            await self._cors(scope, receive, send)
        else:
            await self._app(scope, receive, send)
