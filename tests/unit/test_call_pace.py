"""The Auth0 queue's call pace (`invites.auth0.CallPace`) on a clock the test moves."""

from __future__ import annotations

from invites.auth0 import CallPace


class Clock:
    """Time that moves only when the pace sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def turns(pace: CallPace, clock: Clock, n: int) -> list[float]:
    """When each of `n` calls in a row got its turn."""
    times = []
    for _ in range(n):
        await pace.take()
        times.append(clock.now - 1000.0)
    return times


async def test_two_calls_a_second_after_a_burst_of_two():
    clock = Clock()
    pace = CallPace(2, clock=clock, sleep=clock.sleep)
    assert await turns(pace, clock, 5) == [0.0, 0.0, 0.5, 1.0, 1.5]


async def test_a_slow_ceiling_still_allows_one_call_and_refills_while_idle():
    clock = Clock()
    pace = CallPace(0.5, clock=clock, sleep=clock.sleep)
    assert await turns(pace, clock, 2) == [0.0, 2.0]
    clock.now += 10  # idle: the bucket refills to its one call, no more
    assert await turns(pace, clock, 2) == [12.0, 14.0]


async def test_no_call_before_the_time_auth0_named():
    clock = Clock()
    pace = CallPace(2, clock=clock, sleep=clock.sleep)
    await pace.take()
    pace.hold_until(clock.now + 30)  # a 429 with Retry-After: 30
    pace.hold_until(clock.now + 5)  # an earlier time never shortens the hold
    assert await turns(pace, clock, 2) == [30.0, 30.0]
