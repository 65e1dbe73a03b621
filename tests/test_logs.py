"""Logs: connection lines are rate-limited per kind, with a count of what was held back."""

from __future__ import annotations

import io
import json
import logging

import pytest

from dodo_transform.logs import CONNECTION_LOGGERS, RateLimit, Writer, setup


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(message: str, name: str = "asyncio") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, message, (), None)


def test_at_most_n_lines_of_a_kind_per_window_then_a_count_of_the_rest() -> None:
    clock = Clock()
    limit = RateLimit(per_window=10, window=60.0, clock=clock)
    accept_error = "socket.accept() out of system resource\nsocket: <TransportSocket fd={}>"
    passed = [limit.filter(record(accept_error.format(fd))) for fd in range(100_000)]
    assert sum(passed) == 10
    clock.now += 60
    line = record(accept_error.format(7))
    assert limit.filter(line)
    assert line.suppressed == 100_000 - 10  # type: ignore[attr-defined]
    following = record(accept_error.format(8))
    assert limit.filter(following) and not hasattr(following, "suppressed")


def test_kinds_are_counted_apart() -> None:
    limit = RateLimit(per_window=1, window=60.0, clock=Clock())
    assert limit.filter(record("Invalid HTTP request received.", "uvicorn.error"))
    assert limit.filter(record("socket.accept() out of system resource"))
    assert limit.filter(record("Invalid HTTP request received.", "dodo_transform.web.server"))
    assert not limit.filter(record("Invalid HTTP request received.", "uvicorn.error"))


def test_distinct_lines_do_not_grow_it_without_bound() -> None:
    limit = RateLimit(per_window=1, window=60.0, clock=Clock())
    for n in range(5 * RateLimit.MAX_KINDS):
        letters = "".join(chr(65 + n // 26**place % 26) for place in range(3))  # no digits
        limit.filter(record(f"line {letters}"))
    assert len(limit._kinds) <= RateLimit.MAX_KINDS + 1


def test_setup_puts_one_rate_limit_on_each_connection_logger(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    saved = {name: list(logging.getLogger(name).filters) for name in CONNECTION_LOGGERS}
    try:
        for _ in range(2):
            setup().stop()
        for name in CONNECTION_LOGGERS:
            limits = [f for f in logging.getLogger(name).filters if isinstance(f, RateLimit)]
            assert len(limits) == 1, name
    finally:
        for name, filters in saved.items():
            logging.getLogger(name).filters[:] = filters


def test_the_writer_formats_fast_lines_and_records_alike_and_stop_flushes_them() -> None:
    stream = io.StringIO()
    writer = Writer(stream)
    writer.queue.put((1700000000.25, "dodo_transform.ingest", "webhook stored", {"event_id": 7}))
    writer.queue.put(record("a record", "dodo_transform.web.server"))
    writer.stop()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0] == {
        "time": "2023-11-14T22:13:20.250Z",
        "level": "info",
        "logger": "dodo_transform.ingest",
        "message": "webhook stored",
        "event_id": 7,
    }
    assert lines[1]["message"] == "a record" and lines[1]["level"] == "error"
