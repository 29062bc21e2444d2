"""Auth0 look-ups run on their own task queue under a per-second ceiling that counts Auth0 calls
(each worker's batcher paces its calls; the server's matching service hands out a batch's worth
of activities per call, so this runs on the real dev server)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.auth0 import LOOKUP
from tests.support.stack import Stack

pytestmark = pytest.mark.devserver


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # One address per call, so that each look-up is a call of its own and the pace shows.
    return {"max_task_queue_activities_per_second": 2, "auth0_lookup_batch": 1}


async def test_auth0_calls_are_paced_by_the_ceiling(dev_stack: Stack):
    stack = dev_stack
    async with stack.worker():
        handles = await asyncio.gather(*(stack.invite(f"paced{i}@example.com") for i in range(7)))
        await asyncio.gather(*(stack.sent(h) for h in handles))
    times = sorted(call.at for call in stack.auth0.faults.calls(LOOKUP))
    assert len(times) == 7
    # 7 calls at 2 per second, in bursts of 2: the last no sooner than 2.5 s after the first (a
    # lower bound: load only slows it; 0.05 s for the two clocks' reading).
    assert times[-1] - times[0] >= 2.45, times
    assert len(stack.sendgrid.messages) == 7  # every invitation still went out
