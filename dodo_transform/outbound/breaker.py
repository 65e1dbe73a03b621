"""A circuit breaker for one destination: a destination that keeps failing is paused and probed.

After `FAILURES_TO_PAUSE` failed attempts in a row (no answer in time, no connection, a 5xx
or a 408) the destination is paused: its deliveries wait in the store without spending
their attempts, instead of each failing its way to `dead`. While paused it is probed with
one request at a time, the first `FIRST_PROBE_SECONDS` after pausing and then at intervals
that double up to `MAX_PROBE_SECONDS`; the first attempt it answers resumes it. An answer
that refuses the message (a 4xx) is an answer too: the destination is up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

FAILURES_TO_PAUSE = 5
FIRST_PROBE_SECONDS = 5.0
MAX_PROBE_SECONDS = 300.0


class Change(StrEnum):
    """What one round of results did to the breaker, if anything."""

    PAUSED = "paused"
    RESUMED = "resumed"
    STILL_PAUSED = "still paused"  # a probe failed: the next one waits longer


class Breaker:
    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        *,
        failures_to_pause: int = FAILURES_TO_PAUSE,
        first_probe: float = FIRST_PROBE_SECONDS,
        max_probe: float = MAX_PROBE_SECONDS,
    ) -> None:
        self._clock = clock
        self._threshold = failures_to_pause
        self._first_probe = first_probe
        self._max_probe = max_probe
        self.failures = 0  # failed attempts in a row
        self.last_error: str | None = None
        self.paused_since: float | None = None
        self.probe_at = 0.0
        self._interval = first_probe

    @property
    def paused(self) -> bool:
        return self.paused_since is not None

    def allowance(self) -> int | None:
        """How many deliveries may be in flight now: None (no limit of the breaker's) while
        it is closed; while paused, 1 once the next probe is due, else 0."""
        if not self.paused:
            return None
        return 1 if self._clock() >= self.probe_at else 0

    def succeeded(self) -> Change | None:
        """Count an attempt the destination answered; the change it makes."""
        self.failures = 0
        if not self.paused:
            return None
        self.paused_since = None
        self._interval = self._first_probe
        return Change.RESUMED

    def failed(self, error: str | None, started: float | None = None) -> Change | None:
        """Count a failed attempt, `started` when (None: now); the change it makes. While
        paused, one that started before the pause was in flight already, not a probe: it
        changes nothing."""
        if started is not None and started < (self.paused_since or float("-inf")):
            return None
        self.failures += 1
        self.last_error = error
        now = self._clock()
        if self.paused:
            self._interval = min(self._interval * 2, self._max_probe)
            self.probe_at = now + self._interval
            return Change.STILL_PAUSED
        if self.failures < self._threshold:
            return None
        self.paused_since = now
        self._interval = self._first_probe
        self.probe_at = now + self._interval
        return Change.PAUSED
