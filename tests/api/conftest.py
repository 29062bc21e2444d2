"""The API over real HTTP: uvicorn on 127.0.0.1, the time-skipping Temporal server behind it,
a production-wired worker, and the fakes (Auth0 also signs the access tokens, as a tenant)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.api import Api, api_for
from tests.support.stack import open_stack


@pytest.fixture
async def api(
    ts_env: WorkflowEnvironment, tmp_path: Path, settings_overrides: dict[str, Any]
) -> AsyncIterator[Api]:
    """The API reading the time-skipping server's clock, with the production worker running
    (which terminates the test's open invitations when it stops)."""
    async with (
        open_stack(ts_env, tmp_path, settings_overrides) as stack,
        api_for(stack, clock=stack.now) as api,
        api.stack.worker(),
    ):
        yield api
