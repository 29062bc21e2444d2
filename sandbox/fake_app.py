"""The aiohttp application every fake is built on: fault middleware, call log, admin surface.

Admin surface (never faulted, never logged), so another process can drive a running fake:
- `POST /__fake/faults`  a fault spec or a list of them (see `Faults.script`); 201 with
  `{"faults": [...]}`, a `hold` entry carries the id to release;
- `GET  /__fake/faults`  faults still scripted;
- `POST /__fake/holds/{id}/release`  let a held request through;
- `GET  /__fake/calls?route=`  the call log; `GET /__fake/counts`  calls per route key;
- `POST /__fake/reset`  forget faults and calls.
"""

from __future__ import annotations

import abc
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sandbox.faults import Call, Clock, ErrorBody, Fault, Faults, Hold, default_error_body
from sandbox.server import FakeServer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ADMIN_PREFIX = "/__fake/"


def route_key(request: web.Request) -> str:
    """`METHOD /route/{template}` for a matched route, `METHOD /path` otherwise."""
    resource = request.match_info.route.resource
    return f"{request.method} {resource.canonical if resource else request.path}"


async def parsed_body(request: web.Request) -> Any:
    """The body as JSON, or a dict for form posts; None when empty or unreadable."""
    if not request.body_exists:
        return None
    if request.content_type == "application/x-www-form-urlencoded":
        return dict(await request.post())
    raw = await request.read()
    try:
        return json.loads(raw)
    except ValueError:
        return None


class FakeService(abc.ABC):
    """A fake external API: its routes, fault script and call log, served by aiohttp."""

    def __init__(self, *, clock: Clock = time.time, error_body: ErrorBody = default_error_body):
        self.clock = clock
        self.faults = Faults(clock=clock, error_body=error_body)

    @abc.abstractmethod
    def routes(self) -> list[web.RouteDef]:
        """The fake's own API routes."""

    def middlewares(self) -> list[Any]:
        """Extra middlewares (authentication, rate limits), run after fault injection."""
        return []

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._inject_faults, *self.middlewares()])
        app.add_routes(admin_routes(self.faults))
        app.add_routes(self.routes())
        app.on_shutdown.append(self._release_holds)
        return app

    def serve(self, *, host: str = "127.0.0.1", port: int = 0) -> FakeServer:
        """A server for this fake; use it as a (async) context manager giving the base URL."""
        return FakeServer(self.app(), host=host, port=port)

    def error(self, status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
        """An error answered in this fake's own error shape."""
        body = self.faults.error_body(status, message)
        return web.json_response(body, status=status, headers=headers)

    async def _release_holds(self, _app: web.Application) -> None:
        self.faults.release_all()

    @web.middleware
    async def _inject_faults(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        call = self.faults.record(
            Call(
                method=request.method,
                route=route_key(request),
                path=request.path,
                query={k: ",".join(request.query.getall(k)) for k in request.query},
                json=_redacted(await parsed_body(request)),
                headers=dict(request.headers),
                at=self.clock(),
            )
        )
        fault = self.faults.take(call.route)
        if fault is not None:
            call.fault = fault.kind
            early = await self._apply(fault, request)
            if early is not None:
                call.status = early.status if fault.kind == "status" else None
                return early
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = self.error(exc.status, exc.reason)
        call.status = response.status
        return response

    async def _apply(self, fault: Fault, request: web.Request) -> web.StreamResponse | None:
        """Act on a fault; return the response that replaces the handler's, if any."""
        if fault.kind == "status":
            body = (
                fault.body
                if fault.body is not None
                else self.faults.error_body(fault.status, "Injected fault.")
            )
            return web.json_response(body, status=fault.status, headers=fault.headers)
        if fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
        elif fault.kind == "hold" and fault.hold is not None:
            await fault.hold.park()
        elif fault.kind == "drop":
            # Close the socket before anything is written: the client sees the connection end
            # without a status line. aiohttp discards the response returned afterwards.
            if request.transport is not None:
                request.transport.close()
            return web.Response()
        return None


def admin_routes(faults: Faults) -> list[web.RouteDef]:
    routes = web.RouteTableDef()

    @routes.post(ADMIN_PREFIX + "faults")
    async def script_faults(request: web.Request) -> web.Response:
        """Script one fault or a list of them."""
        try:
            spec = await request.json()
            scripted = [faults.script(s) for s in (spec if isinstance(spec, list) else [spec])]
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"faults": [_describe(s) for s in scripted]}, status=201)

    @routes.get(ADMIN_PREFIX + "faults")
    async def list_faults(request: web.Request) -> web.Response:
        """Faults still scripted."""
        return web.json_response({"faults": [f.as_json() for f in faults.pending()]})

    @routes.post(ADMIN_PREFIX + "holds/{id}/release")
    async def release_hold(request: web.Request) -> web.Response:
        """Let a held request through."""
        hold = faults.get_hold(request.match_info["id"])
        if hold is None:
            return web.json_response({"error": "no such hold"}, status=404)
        hold.release()
        return web.Response(status=204)

    @routes.get(ADMIN_PREFIX + "calls")
    async def list_calls(request: web.Request) -> web.Response:
        """The call log, optionally for one route key."""
        calls = faults.calls(request.query.get("route"))
        return web.json_response({"calls": [c.as_json() for c in calls]})

    @routes.get(ADMIN_PREFIX + "counts")
    async def count_calls(request: web.Request) -> web.Response:
        """How many requests each route key has had (`{"counts": {"GET /api/v2/users": 3}}`)."""
        return web.json_response({"counts": faults.counts()})

    @routes.post(ADMIN_PREFIX + "reset")
    async def reset(request: web.Request) -> web.Response:
        """Forget scripted faults and the call log."""
        faults.reset()
        return web.Response(status=204)

    return list(routes)


def _describe(scripted: Fault | Hold) -> dict[str, Any]:
    if isinstance(scripted, Hold):
        return {"kind": "hold", "hold": scripted.id}
    return scripted.as_json()


SECRET_FIELDS = frozenset({"password", "client_secret"})


def _redacted(body: Any) -> Any:
    """The call log is served at /__fake/calls: keep passwords and client secrets out of it."""
    if isinstance(body, dict):
        return {k: ("<redacted>" if k in SECRET_FIELDS else v) for k, v in body.items()}
    return body
