"""Logs: text on a terminal and JSON lines otherwise, for records and fast lines alike; lines
below the level are dropped; connection lines are rate-limited per kind, with a count of what
was held back."""

from __future__ import annotations

import io
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dodo_transform import logs
from dodo_transform.logs import (
    RATE_LIMITED_LOGGERS,
    JsonFormatter,
    LogFormat,
    RateLimit,
    TextFormatter,
    Writer,
    setup,
)

# The loggers `setup` changes, the root first.
TOUCHED = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpcore")


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """`setup` configures the process's loggers: put them back as they were after the test."""
    loggers = [logging.getLogger(name) for name in TOUCHED + RATE_LIMITED_LOGGERS]
    saved = [(it, list(it.handlers), list(it.filters), it.level, it.propagate) for it in loggers]
    try:
        yield
    finally:
        if logs._writer is not None:
            logs._writer.stop()
        for logger, handlers, filters, level, propagate in saved:
            logger.handlers[:], logger.filters[:] = handlers, filters
            logger.propagate = propagate
            logger.setLevel(level)  # not the attribute: setLevel empties the loggers' caches


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


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


@pytest.mark.usefixtures("restored_logging")
def test_setup_puts_one_rate_limit_on_each_rate_limited_logger() -> None:
    for _ in range(2):
        setup(stream=io.StringIO()).stop()
    for name in RATE_LIMITED_LOGGERS:
        limits = [f for f in logging.getLogger(name).filters if isinstance(f, RateLimit)]
        assert len(limits) == 1, name


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


def local(created: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created))


def test_the_writer_formats_fast_lines_and_records_alike_as_text() -> None:
    stream = io.StringIO()
    writer = Writer(stream, TextFormatter())
    fields = {"webhook_id": "msg_1", "transform": "segment", "outcomes": {"deliver": 1}}
    writer.queue.put((1700000000.25, "dodo_transform.pipeline", "event transformed", fields))
    line = record("a record", "dodo_transform.web.server")
    line.created, line.status = 1700000000.5, 401
    writer.queue.put(line)
    writer.stop()
    assert stream.getvalue().splitlines() == [
        f"{local(1700000000)}.250 INFO  event transformed"
        '  webhook_id=msg_1 transform=segment outcomes={"deliver":1}',
        f"{local(1700000000)}.500 ERROR a record  status=401",
    ]


def failed(level: int) -> logging.LogRecord:
    try:
        raise ValueError("the cause")
    except ValueError:
        line = logging.LogRecord("t", level, __file__, 1, "it failed", (), sys.exc_info())
    line.created = 1700000000.0
    return line


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()], ids=["text", "json"])
def test_an_error_carries_its_exception_and_a_lesser_line_does_not(
    formatter: logging.Formatter,
) -> None:
    error = formatter.format(failed(logging.ERROR))
    warning = formatter.format(failed(logging.WARNING))
    assert "ValueError: the cause" in error and "Traceback" not in warning
    if isinstance(formatter, TextFormatter):
        assert error.splitlines()[0].endswith("ERROR it failed")
        assert error.splitlines()[1] == "Traceback (most recent call last):"
    else:
        assert "ValueError: the cause" in json.loads(error)["exception"]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("msg_1", "msg_1"),
        ("payment.succeeded", "payment.succeeded"),
        ("two words", '"two words"'),
        ("", '""'),
        ("a\nfake=line", '"a\\nfake=line"'),
        ('say "hi"', '"say \\"hi\\""'),
        (7, "7"),
        (2.5, "2.5"),
        (True, "true"),
        (None, "null"),
        ({"segment": "delivered"}, '{"segment":"delivered"}'),
        (["a", 1], '["a",1]'),
        (Path("transforms/segment.js"), "transforms/segment.js"),
    ],
)
def test_text_fields_are_key_equals_value_with_anything_ambiguous_quoted(
    value: object, shown: str
) -> None:
    line = TextFormatter().line(1700000000.0, "INFO", "t", "m", {"key": value})
    assert line.endswith(f" m  key={shown}")
    assert "\n" not in line  # a value cannot start a line of its own


@pytest.mark.usefixtures("restored_logging")
@pytest.mark.parametrize(
    ("log_format", "terminal", "text"),
    [
        ("auto", True, True),
        ("auto", False, False),
        ("text", False, True),
        ("json", True, False),
    ],
)
def test_setup_writes_text_to_a_terminal_and_json_elsewhere_unless_told(
    log_format: LogFormat, terminal: bool, text: bool
) -> None:
    stream = Terminal() if terminal else io.StringIO()
    setup(log_format=log_format, stream=stream)
    logging.getLogger("dodo_transform.test").warning("a record", extra={"n": 1})
    logs.info(logging.getLogger("dodo_transform.test"), "a fast line", n=2)
    assert logs._writer is not None
    logs._writer.stop()
    written = stream.getvalue().splitlines()
    assert len(written) == 2
    if text:
        assert written[0].endswith(" WARNING a record  n=1")
        assert written[1].endswith(" INFO  a fast line  n=2")
    else:
        assert [json.loads(line)["n"] for line in written] == [1, 2]
        assert json.loads(written[0])["level"] == "warning"


@pytest.mark.usefixtures("restored_logging")
@pytest.mark.parametrize(
    ("level", "written"),
    [
        ("debug", ["fast", "debug", "info", "warning", "error", "access"]),
        ("info", ["fast", "info", "warning", "error", "access"]),
        ("warning", ["warning", "error", "access"]),
        ("error", ["error"]),
    ],
)
def test_setup_writes_only_lines_at_its_level_and_above(
    level: logs.LogLevel, written: list[str]
) -> None:
    stream = io.StringIO()
    setup(level, "json", stream)
    logger = logging.getLogger("dodo_transform.test")
    logs.info(logger, "fast")
    for name in ("debug", "info", "warning", "error"):
        getattr(logger, name)(name)
    logging.getLogger("uvicorn.access").warning("access")  # a logger with a level of its own
    assert logs._writer is not None
    logs._writer.stop()
    assert [json.loads(line)["message"] for line in stream.getvalue().splitlines()] == written


def test_secrets_the_service_knows_are_scrubbed_from_every_line_written() -> None:
    stream = io.StringIO()
    writer = logs.Writer(stream, logs.JsonFormatter())
    logs.hide(lambda: {"re_live_Key123", 'quo"ted_Secret'})
    try:
        log = logging.getLogger("scrub-test")
        writer.queue.put(
            (time.time(), log.name, "HTTP 401: Bearer re_live_Key123", {"error": 'quo"ted_Secret'})
        )
        writer.stop()
    finally:
        logs.hide(frozenset)
    line = json.loads(stream.getvalue())
    assert line["message"] == "HTTP 401: Bearer [redacted]"
    assert line["error"] == "[redacted]"


def test_scrubbing_takes_secrets_out_of_strings_only_never_out_of_numbers() -> None:
    stream = io.StringIO()
    writer = logs.Writer(stream, logs.JsonFormatter())
    logs.hide(lambda: {"17123456"})
    try:
        fields = {"at": 1712345678.25, "payment": "pay_17123456"}
        writer.queue.put((time.time(), "scrub-test", "stored", fields))
        writer.stop()
    finally:
        logs.hide(frozenset)
    line = json.loads(stream.getvalue())
    assert (line["at"], line["payment"]) == (1712345678.25, "pay_[redacted]")
