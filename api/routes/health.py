"""Liveness, readiness and Prometheus metrics for the platform."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from api.deps import ServicesDep
from api.errors import ApiError

router = APIRouter(tags=["platform"])
log = logging.getLogger("invites.api")
CHECK_TIMEOUT_S = 3


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Temporal or the database does not answer"}})
async def readyz(services: ServicesDep) -> JSONResponse:
    """Ready when Temporal and the database both answer (checked side by side, each bounded)."""
    temporal, database = await asyncio.gather(
        _check("temporal", services.temporal.workflow_service.get_system_info(GetSystemInfoRequest())),
        _check("database", services.store.ping()),
    )
    checks = {"temporal": temporal, "database": database}
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks}, status_code=200 if ready else 503
    )


async def _check(name: str, probe: Awaitable[object]) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await probe
    except Exception as exc:  # any failure means "not ready"; the kind goes to the log
        log.warning("readiness: %s failed (%s)", name, type(exc).__name__)
        return "unavailable"
    return "ok"


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, services: ServicesDep) -> Response:
    """Prometheus metrics: requests and latencies per route, redemptions by result.

    With INVITES_METRICS_TOKEN set, only for `Authorization: Bearer <that token>`; unset, open in
    development and off in production."""
    token = services.settings.metrics_token
    if token is None and services.settings.env != "development":
        raise ApiError(404, "not_found", "Metrics are off: set INVITES_METRICS_TOKEN and scrape with it.")
    if token is not None:
        expected = f"Bearer {token.get_secret_value()}".encode()
        if not hmac.compare_digest(request.headers.get("authorization", "").encode(), expected):
            raise ApiError(401, "unauthorized", "Scrape /metrics with INVITES_METRICS_TOKEN as bearer token.")
    await services.metrics.refresh_funnel(services.store, services.settings.funnel_sources)
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
