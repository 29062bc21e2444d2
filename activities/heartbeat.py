"""Heartbeat while an activity waits on a slow outside system.

With a `heartbeat_timeout` on the call, Temporal notices a crashed worker within seconds and
retries elsewhere, instead of waiting for the whole start-to-close timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from temporalio import activity

INTERVAL_S = 1.0


@contextlib.asynccontextmanager
async def heartbeating(interval: float = INTERVAL_S) -> AsyncIterator[None]:
    async def beat() -> None:
        # Sleep first: a call that answers within a second sends no heartbeat (a billable action).
        while True:
            await asyncio.sleep(interval)
            activity.heartbeat()

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
