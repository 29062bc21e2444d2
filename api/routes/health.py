"""Liveness, readiness and Prometheus metrics for the platform."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from api.deps import ServicesDep

router = APIRouter(tags=["platform"])
log = logging.getLogger("invites.api")
CHECK_TIMEOUT_S = 3


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Temporal or the database does not answer"}})
async def readyz(services: ServicesDep) -> JSONResponse:
    """Ready when Temporal and the database both answer."""
    checks = {
        "temporal": services.temporal.workflow_service.get_system_info(GetSystemInfoRequest()),
        "database": services.store.ping(),
    }
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                await check
            results[name] = "ok"
        except Exception as exc:
            log.warning("readiness: %s failed (%s)", name, type(exc).__name__)
            results[name] = "unavailable"
    ready = all(v == "ok" for v in results.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": results}, status_code=200 if ready else 503
    )


@router.get("/metrics", response_class=Response)
async def metrics(services: ServicesDep) -> Response:
    """Prometheus metrics: requests and latencies per route, redemptions by result."""
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
