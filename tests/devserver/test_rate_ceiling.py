"""Auth0 activities run on their own task queue under a per-second ceiling (enforced by the
server's matching service, so this runs on the real dev server)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.auth0 import LOOKUP
from tests.support.stack import Stack

pytestmark = pytest.mark.devserver


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"max_task_queue_activities_per_second": 2}


async def test_auth0_calls_are_paced_by_the_task_queue_ceiling(dev_stack: Stack):
    stack = dev_stack
    async with stack.worker():
        handles = await asyncio.gather(*(stack.invite(f"paced{i}@example.com") for i in range(7)))
        await asyncio.gather(*(stack.sent(h) for h in handles))
    times = sorted(call.at for call in stack.auth0.faults.calls(LOOKUP))
    assert len(times) == 7
    # 7 lookups at 2 per second cannot all start within 2.5 s (a lower bound: load only slows it).
    assert times[-1] - times[0] >= 2.5, times
    assert len(stack.sendgrid.messages) == 7  # every invitation still went out
