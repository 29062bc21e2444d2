"""The event loop our long-running processes use."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (every platform but Windows), else asyncio's default (None).

    The worker's activities' HTTP and the SDK's callbacks run on this loop (workflow code runs on
    the SDK's own deterministic loop); the bench's load generator too. uvicorn picks uvloop for
    the API by itself."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
