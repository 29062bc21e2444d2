"""Run a fake's aiohttp app on 127.0.0.1 in a background thread with its own event loop.

A thread (not the caller's loop) so that synchronous SDKs (sendgrid, hubspot) can block on the
fake while it answers, and so that async tests can hold a request open while they act.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from types import TracebackType

from aiohttp import web

START_TIMEOUT = 10.0
# Requests still in flight at stop (a delay fault, say) get this long before being cancelled.
SHUTDOWN_GRACE = 0.5


class FakeServer:
    """`with FakeServer(app) as url:` or `async with ...`; port 0 picks a free port."""

    def __init__(self, app: web.Application, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        """Start serving; returns the base URL once the socket accepts connections."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        ready: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=f"fake-server-{self.port}", daemon=True
        )
        self._thread.start()
        self.port = ready.result(timeout=START_TIMEOUT)
        return self.url

    def stop(self) -> None:
        """Stop serving and wait for the thread to finish. Safe to call twice."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or loop is None or stopping is None:
            return
        if not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        thread.join(START_TIMEOUT)
        self._thread = None

    def _run(self, ready: concurrent.futures.Future[int]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready))
        finally:
            loop.close()

    async def _serve(self, ready: concurrent.futures.Future[int]) -> None:
        self._stopping = asyncio.Event()
        runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE
        )
        try:
            await runner.setup()
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
            port = runner.addresses[0][1]
        except BaseException as exc:
            await runner.cleanup()
            ready.set_exception(exc)
            return
        ready.set_result(port)
        try:
            await self._stopping.wait()
        finally:
            await runner.cleanup()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> str:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)
