"""The `invites` command line (SPEC §8)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import typer

app = typer.Typer(help="Durable invitations for Auth0, one Temporal workflow each.", no_args_is_help=True)


@app.command()
def worker() -> None:
    """Run the Temporal worker (workflow + activities) with settings from INVITES_* variables."""
    import worker as worker_module  # the CLI sits above the worker; the core never imports it

    worker_module.main()


@app.command()
def api() -> None:
    """Run the HTTP API (uvicorn) on INVITES_API_HOST:INVITES_API_PORT."""
    import uvicorn

    from invites.settings import get_settings

    settings = get_settings()
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        proxy_headers=True,
        log_level="info",
    )


@app.command()
def dev() -> None:
    """Run the product on this machine: Temporal dev server and UI, Auth0 sandbox, worker."""
    from invites.devstack import STATE_DIR, run_dev

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    STATE_DIR.mkdir(exist_ok=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_dev())


if __name__ == "__main__":
    app()
