"""A destination that keeps failing is paused, probed at growing intervals, and resumed."""

from __future__ import annotations

from dodo_transform.outbound.breaker import FAILURES_TO_PAUSE, Breaker, Change


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_it_pauses_after_failures_in_a_row_only() -> None:
    breaker = Breaker(Clock())
    for _ in range(FAILURES_TO_PAUSE - 1):
        assert breaker.failed("HTTP 503") is None
    assert breaker.succeeded() is None  # an answer in between starts the count again
    for _ in range(FAILURES_TO_PAUSE - 1):
        breaker.failed("HTTP 503")
    assert breaker.allowance() is None
    assert breaker.failed("no complete answer within 15 s") is Change.PAUSED
    assert breaker.paused and breaker.last_error == "no complete answer within 15 s"


def test_paused_it_allows_one_probe_at_growing_intervals_until_an_answer() -> None:
    clock = Clock()
    breaker = Breaker(clock, failures_to_pause=1, first_probe=5, max_probe=12)
    assert breaker.failed("HTTP 500") is Change.PAUSED
    assert breaker.allowance() == 0
    waits = []
    for _ in range(4):
        waits.append(breaker.probe_at - clock.now)
        clock.now = breaker.probe_at
        assert breaker.allowance() == 1
        assert breaker.failed("HTTP 500") is Change.STILL_PAUSED
        assert breaker.allowance() == 0
    assert waits == [5, 10, 12, 12]
    clock.now = breaker.probe_at
    assert breaker.succeeded() is Change.RESUMED
    assert not breaker.paused and breaker.allowance() is None
    assert breaker.failed("HTTP 500") is Change.PAUSED
    assert breaker.probe_at - clock.now == 5  # a new pause starts from the first interval


def test_attempts_in_flight_when_it_paused_are_no_failed_probes() -> None:
    clock = Clock()
    breaker = Breaker(clock, failures_to_pause=1, first_probe=5)
    started = clock.now
    clock.now += 1
    assert breaker.failed("HTTP 500", started) is Change.PAUSED
    probe_at = breaker.probe_at
    assert breaker.failed("HTTP 500", started) is None  # sent before the pause
    assert breaker.probe_at == probe_at
    clock.now = probe_at
    assert breaker.failed("HTTP 500", clock.now) is Change.STILL_PAUSED
