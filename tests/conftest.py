"""Suite-wide fixtures: the Temporal servers (time-skipping and dev), and a stack on the dev server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.stack import Stack, open_stack
from tests.support.temporal import start_dev_server, start_time_skipping

# The suite runs in development, where the public dev defaults and the fakes on 127.0.0.1 are
# allowed (production refuses them, SPEC §10). Set here, before any test builds `Settings`, so
# settings built in this process and every process a test starts (they inherit the environment)
# agree; tests of production pass `env="production"` or remove the variable themselves.
os.environ["INVITES_ENV"] = "development"


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
    """
    env = await start_time_skipping()
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """One dev server for the session's tests (each uses its own task queue)."""
    env = await start_dev_server()
    yield env
    await env.shutdown()


@pytest.fixture
async def dev_stack(
    dev_env: WorkflowEnvironment, tmp_path: Path, settings_overrides: dict[str, Any]
) -> AsyncIterator[Stack]:
    """Fresh fakes, store and task queue on the shared dev server: real time and real visibility.

    `temporal_address` is set so the settings fully describe the stack: a worker started in
    another process from these settings reaches the same server.
    """
    address = dev_env.client.service_client.config.target_host
    async with open_stack(dev_env, tmp_path, {"temporal_address": address, **settings_overrides}) as stack:
        yield stack
