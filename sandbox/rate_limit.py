"""A token bucket, the model Auth0 documents for its Management API rate limits."""

from __future__ import annotations

import math
import time

from sandbox.faults import Clock


class TokenBucket:
    """`rate` requests per second, bursts up to `burst` (default: one second's worth)."""

    def __init__(self, rate: float, *, burst: int | None = None, clock: Clock = time.time):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = burst if burst is not None else max(1, math.floor(rate))
        self.clock = clock
        self._tokens = float(self.capacity)
        self._updated = clock()

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def take(self) -> bool:
        """Spend one token; False when the bucket is empty (the request must get a 429)."""
        self._refill()
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    @property
    def remaining(self) -> int:
        self._refill()
        return math.floor(self._tokens)

    @property
    def reset_at(self) -> int:
        """Epoch second at which the bucket is full again (Auth0's `x-ratelimit-reset`)."""
        self._refill()
        return math.ceil(self._updated + (self.capacity - self._tokens) / self.rate)

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.capacity),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset_at),
        }
