"""Prometheus metrics of the API, in a registry per app (tests build many apps)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Receive, Scope, Send

from invites.db.funnel import FunnelStore
from invites.db.store import Store

# The funnel's totals are read from the database at most this often per process.
FUNNEL_REFRESH_S = 5.0


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "invites_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "invites_http_request_duration_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            registry=self.registry,
        )
        self.redemptions = Counter(
            "invites_redemptions", "Webhook redemptions by result", ["result"], registry=self.registry
        )
        self.rejected_early = Counter(
            "invites_rejected_before_temporal",
            "Requests refused before any Temporal call (forged token, bad webhook signature)",
            ["route", "reason"],
            registry=self.registry,
        )
        self.sendgrid_events = Counter(
            "invites_sendgrid_events",
            "SendGrid Event Webhook events by what became of them (applied, duplicates, ignored, invalid)",
            ["result"],
            registry=self.registry,
        )
        self.funnel = FunnelCollector()
        self.registry.register(self.funnel)

    async def refresh_funnel(self, store: Store, sources: list[str]) -> None:
        """Read the funnel's totals for the next scrape (every replica reports the same totals)."""
        if time.monotonic() - self.funnel.read_at < FUNNEL_REFRESH_S:
            return
        self.funnel.totals = await FunnelStore(store).totals(sources or None)
        self.funnel.by_source = bool(sources)
        self.funnel.read_at = time.monotonic()


class FunnelCollector(Collector):
    """`invites_funnel_invitations_total{stage[,source]}`: invitations that reached each stage,
    from the funnel table (so the same numbers as GET /v1/stats/funnel, all time). `source` is a
    label only when INVITES_FUNNEL_SOURCES lists the sources: unlisted ones count as `other`, none
    as `none`, and the label's values stay bounded. Campaigns are never a label."""

    def __init__(self) -> None:
        self.totals: dict[tuple[str, str], int] = {}
        self.by_source = False
        self.read_at = float("-inf")

    def collect(self) -> Iterator[Metric]:
        labels = ["stage", "source"] if self.by_source else ["stage"]
        family = CounterMetricFamily(
            "invites_funnel_invitations", "Invitations that reached each funnel stage", labels=labels
        )
        for (stage, source), value in sorted(self.totals.items()):
            family.add_metric([stage, source] if self.by_source else [stage], value)
        yield family


class MetricsMiddleware:
    """Counts and times every request under its route template (never the raw path: tokens)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_record(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            method = scope.get("method", "")
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - start)
