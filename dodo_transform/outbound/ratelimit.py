"""Per-destination request pacing: a token bucket, and a pause after a 429.

Segment limits requests per workspace; after a 429 the destination is paused
until `Retry-After` instead of being retried at once, so an outage costs a
bounded number of requests rather than a retry storm.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    tokens: float
    updated: float
    paused_until: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class RateLimiter:
    def __init__(
        self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 10)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def _bucket(self, key: str) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, self._clock())
        return bucket

    def paused_for(self, key: str) -> float:
        """Seconds until `key` may be sent to again after a 429 (0 when not paused)."""
        return max(0.0, self._bucket(key).paused_until - self._clock())

    def pause(self, key: str, seconds: float) -> None:
        bucket = self._bucket(key)
        bucket.paused_until = max(bucket.paused_until, self._clock() + seconds)

    async def acquire(self, key: str) -> None:
        """Wait for a token for `key`."""
        bucket = self._bucket(key)
        async with bucket.lock:
            while True:
                now = self._clock()
                bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
                bucket.updated = now
                if bucket.tokens >= 1:
                    bucket.tokens -= 1
                    return
                await asyncio.sleep((1 - bucket.tokens) / self.rate)
