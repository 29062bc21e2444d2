"""The worker's Temporal SDK runtime: its metrics on a Prometheus endpoint, its logs in ours.

The SDK's Rust core counts and times every workflow task, activity and poll. With
`INVITES_WORKER_METRICS_PORT` set (default 9464) it serves them at `http://<host>:<port>/metrics`
(names in docs/operations.md); the core's
own warnings are forwarded to the `temporalio.core` logger, so they come out as our log lines.

A runtime owns a thread pool and the endpoint: one per process, made before the first client.
"""

from __future__ import annotations

import ipaddress
import logging

from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from invites.settings import Settings

log = logging.getLogger("invites.telemetry")
CORE_LOGGER = "temporalio.core"
# Where the endpoint listens unless INVITES_WORKER_METRICS_HOST says: in production the worker
# runs in a container (or a host) that Prometheus scrapes from outside; a dev box keeps it local.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - deliberate, see above
LOOPBACK = "127.0.0.1"


def metrics_address(settings: Settings) -> str | None:
    """`host:port` of the Prometheus endpoint (`[v6]:port` for IPv6), or None when disabled."""
    if settings.worker_metrics_port is None:
        return None
    host = settings.worker_metrics_host or (ALL_INTERFACES if settings.env == "production" else LOOPBACK)
    if ipaddress.ip_address(host).version == 6:
        host = f"[{host}]"
    return f"{host}:{settings.worker_metrics_port}"


def _telemetry(metrics: PrometheusConfig | None) -> TelemetryConfig:
    return TelemetryConfig(
        logging=LoggingConfig(
            filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
            forwarding=LogForwardingConfig(
                logger=logging.getLogger(CORE_LOGGER),
                append_target_to_name=False,
                prepend_target_on_message=False,
                append_log_fields_to_message=False,  # invites.logs puts them in fields
            ),
        ),
        metrics=metrics,
    )


def build_runtime(settings: Settings) -> Runtime:
    """The worker's runtime. A metrics port already taken is logged as an error and the worker
    runs without metrics: invitations keep flowing, and the scrape target shows as down."""
    address = metrics_address(settings)
    if address is None:
        return Runtime(telemetry=_telemetry(None))
    try:
        runtime = Runtime(telemetry=_telemetry(PrometheusConfig(bind_address=address)))
    except ValueError as exc:  # the SDK's "Failed starting Prometheus exporter: Address already in use"
        log.error(
            "worker metrics endpoint not started on %s (%s); set INVITES_WORKER_METRICS_PORT", address, exc
        )
        return Runtime(telemetry=_telemetry(None))
    log.info("worker metrics at http://%s/metrics", address)
    return runtime


def install_runtime(settings: Settings) -> Runtime:
    """Build the runtime and make it the process default, so every client made after this
    (`invites.temporal.build_temporal_client`) and its workers use it."""
    runtime = build_runtime(settings)
    Runtime.set_default(runtime, error_if_already_set=False)
    return runtime
