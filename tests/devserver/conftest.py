"""The workflow stack of `tests/workflows` on the real dev server (`temporal server start-dev`).

Real time and real visibility (SQLite): what the time-skipping server cannot show, namely
list queries on our search attributes and a worker process that dies and is replaced.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.workflows.conftest import Stack, _stack


@pytest.fixture
async def dev_stack(
    dev_env: WorkflowEnvironment, tmp_path: Path, settings_overrides: dict[str, Any]
) -> AsyncIterator[Stack]:
    """Fresh fakes, store and task queue; settings point at the dev server itself.

    `temporal_address` is set so the settings fully describe the stack: a worker started in
    another process from these settings reaches the same server.
    """
    address = dev_env.client.service_client.config.target_host
    async with _stack(dev_env, tmp_path, {"temporal_address": address, **settings_overrides}) as stack:
        yield stack
