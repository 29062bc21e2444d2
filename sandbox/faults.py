"""Fault injection and the call log shared by every fake server.

Faults are scripted per route key, the route *template* as the fake declares it
("POST /api/v2/users/{id}/roles"), or "*" for any route. Each request consumes at most one
fault: the route's own script first, then the wildcard script, each first-in first-out.
A fault answers a status, waits, drops the connection or holds the request until released;
it lasts for one request, the next N requests, or every request until a point in time.

Tests script faults on the server thread's `Faults` from their own thread; every method here
is thread-safe.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal

FaultKind = Literal["status", "delay", "drop", "hold"]
Clock = Callable[[], float]
ErrorBody = Callable[[int, str], Any]

WILDCARD = "*"


class Hold:
    """A request parked by a `hold` fault until the test releases it."""

    def __init__(self, hold_id: str) -> None:
        self.id = hold_id
        self._arrived: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._released: concurrent.futures.Future[None] = concurrent.futures.Future()

    async def arrived(self) -> None:
        """Wait (from any event loop) until a request is parked on this hold."""
        await asyncio.wrap_future(self._arrived)

    def wait_arrived(self, timeout: float | None = None) -> None:
        """Blocking variant of `arrived` for synchronous tests."""
        self._arrived.result(timeout)

    def release(self) -> None:
        """Let the parked request (or the next one to arrive) through. Thread-safe, idempotent."""
        if not self._released.done():
            self._released.set_result(None)

    async def park(self) -> None:
        """Server side: mark the request arrived and wait for the release."""
        if not self._arrived.done():
            self._arrived.set_result(None)
        await asyncio.wrap_future(self._released)


@dataclass
class Fault:
    """One scripted fault. `times=None` with `until` set means every request until then."""

    kind: FaultKind
    status: int = 503
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    times: int | None = 1
    until: float | None = None
    hold: Hold | None = None

    def expired(self, now: float) -> bool:
        return (self.until is not None and now >= self.until) or self.times == 0

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "status": self.status if self.kind == "status" else None,
            "headers": self.headers,
            "seconds": self.seconds,
            "times": self.times,
            "until": self.until,
            "hold": self.hold.id if self.hold else None,
        }


@dataclass
class Call:
    """One request as the fake saw it; `status` stays None while pending or when dropped."""

    method: str
    route: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    at: float
    status: int | None = None
    fault: FaultKind | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "route": self.route,
            "path": self.path,
            "query": self.query,
            "json": self.json,
            "headers": self.headers,
            "at": self.at,
            "status": self.status,
            "fault": self.fault,
        }


def default_error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": HTTPStatus(status).phrase, "message": message}


class Faults:
    """Per-route fault scripts plus the log of every request answered by one fake."""

    def __init__(self, *, clock: Clock = time.time, error_body: ErrorBody = default_error_body):
        self.clock = clock
        self.error_body = error_body
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Fault]] = {}
        self._holds: dict[str, Hold] = {}
        self._hold_ids = itertools.count(1)
        self._calls: list[Call] = []

    # -- scripting -------------------------------------------------------------------------

    def add(self, route: str, fault: Fault) -> Fault:
        """Append a fault to the route's script."""
        with self._lock:
            self._scripts.setdefault(route, []).append(fault)
        return fault

    def status(
        self,
        route: str,
        status: int,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        times: int | None = None,
        for_seconds: float | None = None,
        until: float | None = None,
    ) -> Fault:
        """Answer `status` (with e.g. a Retry-After header) instead of the real handler."""
        times, until = self._period(times, for_seconds, until)
        return self.add(
            route,
            Fault("status", status, body, dict(headers or {}), times=times, until=until),
        )

    def delay(
        self,
        route: str,
        seconds: float,
        *,
        times: int | None = None,
        for_seconds: float | None = None,
        until: float | None = None,
    ) -> Fault:
        """Wait `seconds`, then answer normally."""
        times, until = self._period(times, for_seconds, until)
        return self.add(route, Fault("delay", seconds=seconds, times=times, until=until))

    def drop(
        self,
        route: str,
        *,
        times: int | None = None,
        for_seconds: float | None = None,
        until: float | None = None,
    ) -> Fault:
        """Close the TCP connection without sending any response."""
        times, until = self._period(times, for_seconds, until)
        return self.add(route, Fault("drop", times=times, until=until))

    def hold(self, route: str) -> Hold:
        """Park the next request on `route` until `Hold.release()`."""
        with self._lock:
            hold = Hold(f"hold-{next(self._hold_ids)}")
            self._holds[hold.id] = hold
        self.add(route, Fault("hold", hold=hold))
        return hold

    def script(self, spec: dict[str, Any]) -> Fault | Hold:
        """Script a fault from its JSON form (the admin surface's POST /__fake/faults)."""
        if not isinstance(spec, dict):
            raise TypeError("a fault spec is a JSON object")
        route = spec.get("route", WILDCARD)
        kind = spec.get("kind")
        period = {k: spec.get(k) for k in ("times", "for_seconds", "until")}
        if kind == "status":
            return self.status(
                route,
                int(spec.get("status", 503)),
                body=spec.get("body"),
                headers={k: str(v) for k, v in (spec.get("headers") or {}).items()},
                **period,
            )
        if kind == "delay":
            return self.delay(route, float(spec.get("seconds", 0)), **period)
        if kind == "drop":
            return self.drop(route, **period)
        if kind == "hold":
            return self.hold(route)
        raise ValueError(f"unknown fault kind {kind!r}; use status, delay, drop or hold")

    def _period(
        self, times: int | None, for_seconds: float | None, until: float | None
    ) -> tuple[int | None, float | None]:
        """One request by default; else `times` requests and/or every request until a time."""
        if for_seconds is not None:
            until = self.clock() + for_seconds
        if times is None and until is None:
            times = 1
        return times, until

    def get_hold(self, hold_id: str) -> Hold | None:
        with self._lock:
            return self._holds.get(hold_id)

    # -- consumption (server side) ------------------------------------------------------------

    def take(self, route: str) -> Fault | None:
        """Consume the fault that applies to this request, if any."""
        now = self.clock()
        with self._lock:
            for key in (route, WILDCARD):
                script = self._scripts.get(key, [])
                while script and script[0].expired(now):
                    script.pop(0)
                if script:
                    fault = script[0]
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times == 0:
                            script.pop(0)
                    return fault
        return None

    def pending(self, route: str | None = None) -> list[Fault]:
        """Faults still scripted (for `route`, or all)."""
        now = self.clock()
        with self._lock:
            scripts = [self._scripts.get(route, [])] if route else list(self._scripts.values())
            return [f for script in scripts for f in script if not f.expired(now)]

    # -- call log ---------------------------------------------------------------------------

    def record(self, call: Call) -> Call:
        with self._lock:
            self._calls.append(call)
        return call

    def calls(self, route: str | None = None) -> list[Call]:
        """Requests seen, oldest first, optionally only those on one route key."""
        with self._lock:
            return [c for c in self._calls if route is None or c.route == route]

    def count(self, route: str | None = None, *, status: int | None = None) -> int:
        """How many requests hit `route` (optionally only those answered with `status`)."""
        return sum(1 for c in self.calls(route) if status is None or c.status == status)

    def counts(self) -> dict[str, int]:
        """Requests seen per route key."""
        with self._lock:
            return dict(Counter(c.route for c in self._calls))

    def reset(self) -> None:
        """Forget scripted faults and calls; release every held request."""
        with self._lock:
            holds = list(self._holds.values())
            self._scripts.clear()
            self._holds.clear()
            self._calls.clear()
        for hold in holds:
            hold.release()

    def release_all(self) -> None:
        with self._lock:
            holds = list(self._holds.values())
        for hold in holds:
            hold.release()
