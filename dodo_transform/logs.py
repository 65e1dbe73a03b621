"""Logs: one line per record, as text for a person at a terminal or as JSON for a machine.

A text line is the local time, the level, the message, then the fields as `key=value`:

    2026-11-28 04:10:00.123 INFO  event transformed  webhook_id=msg_1 transform=segment

A JSON line is one object: `time` (UTC), `level`, `logger`, `message` and the fields. Either
way, an error's exception follows it (below the text line, or as `exception`).

Nothing here logs headers, bodies, secrets or write keys; callers pass only
the fields named in `log`, and every line is scrubbed of the secrets the service knows
(`hide`) before it is written, should one reach an error message. Lines any client can
cause at will (about connections, or refused webhooks) are rate-limited (`RateLimit`). A
line per webhook goes through `info`, which hands the writer thread a tuple instead of a
`logging` record (a record costs several times more).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
import re
import sys
import threading
import time
from collections.abc import Callable, Collection
from typing import Any, Literal, TextIO

import orjson

from dodo_transform.outgoing.redaction import scrub, scrub_json

LogFormat = Literal["auto", "text", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}


class LineFormatter(logging.Formatter):
    """A record as one line, its exception below it at error level; `line` lays it out, for
    records and for the writer's fast lines alike."""

    def format(self, record: logging.LogRecord) -> str:
        exception = None
        if record.exc_info and record.levelno >= logging.ERROR:
            exception = hidden_from(self.formatException(record.exc_info))
        fields = {k: v for k, v in vars(record).items() if k not in _RESERVED}
        message = record.getMessage()
        return self.hidden_line(
            record.created, record.levelname, record.name, message, fields, exception
        )

    def hidden_line(
        self,
        created: float,
        level: str,
        logger: str,
        message: str,
        fields: dict[str, object],
        exception: str | None = None,
    ) -> str:
        """`line`, with the secrets the service knows (`hide`) taken out of the message and
        the fields' strings first: never out of the laid-out line, whose numbers and syntax a
        short secret could cut."""
        hidden = _hidden()
        if hidden:
            message = scrub(message, hidden)
            fields = scrub_json(fields, hidden)
        return self.line(created, level, logger, message, fields, exception)

    def line(
        self,
        created: float,
        level: str,
        logger: str,
        message: str,
        fields: dict[str, object],
        exception: str | None = None,
    ) -> str:
        raise NotImplementedError


class JsonFormatter(LineFormatter):
    def line(
        self,
        created: float,
        level: str,
        logger: str,
        message: str,
        fields: dict[str, object],
        exception: str | None = None,
    ) -> str:
        line: dict[str, object] = {
            "time": _utc(created),
            "level": level.lower(),
            "logger": logger,
            "message": message,
        }
        line |= fields
        if exception is not None:
            line["exception"] = exception
        return _dumps(line)


class TextFormatter(LineFormatter):
    def line(
        self,
        created: float,
        level: str,
        logger: str,
        message: str,
        fields: dict[str, object],
        exception: str | None = None,
    ) -> str:
        text = f"{_local(created)} {level:<5} {message}"
        if fields:
            text += "  " + " ".join(f"{key}={_text_value(value)}" for key, value in fields.items())
        return text if exception is None else f"{text}\n{exception}"


# A text value shown as it is; any other is quoted, so a space, a quote or a line break in it
# cannot pass for the next field or the next line.
_BARE = re.compile(r"[\w.,:/@+#-]+")


def _text_value(value: object) -> str:
    if isinstance(value, str):
        return value if _BARE.fullmatch(value) else json.dumps(value, ensure_ascii=False)
    if value is None or isinstance(value, bool | int | float | dict | list | tuple):
        return _dumps(value)
    return _text_value(str(value))


def formatter(log_format: LogFormat, stream: TextIO) -> LineFormatter:
    """The layout `log_format` names; "auto" is text on a terminal and JSON otherwise."""
    if log_format == "auto":
        log_format = "text" if stream.isatty() else "json"
    return TextFormatter() if log_format == "text" else JsonFormatter()


# Loggers whose lines any client can cause at will, not a stored webhook: a hostile client or a
# full file table can make them repeat a line thousands of times a second.
RATE_LIMITED_LOGGERS = (
    "asyncio",
    "uvicorn.error",
    "dodo_transform.web.server",
    "dodo_transform.ingest.refused",
)


class RateLimit(logging.Filter):
    """At most `per_window` lines of one kind per `window` seconds.

    A kind is the logger and the first line of the message, with numbers and addresses taken
    out. The first line let through after some were held back carries `suppressed`: how many.
    """

    MAX_KINDS = 1000

    def __init__(
        self,
        per_window: int = 10,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.per_window = per_window
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        # kind -> [window start, lines let through in it, lines held back since the last one]
        self._kinds: dict[tuple[str, str], list[float]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.name, _kind_of(record.msg))
        now = self.clock()
        with self._lock:
            if len(self._kinds) > self.MAX_KINDS:
                self._kinds.clear()  # a flood of distinct lines: start over rather than grow
            count = self._kinds.setdefault(kind, [now, 0, 0])
            if now - count[0] >= self.window:
                count[0], count[1] = now, 0
            if count[1] >= self.per_window:
                count[2] += 1
                return False
            if count[2]:
                record.suppressed = int(count[2])
            count[1], count[2] = count[1] + 1, 0
            return True


def _kind_of(message: object) -> str:
    first = str(message).split("\n", 1)[0][:200]
    return re.sub(r"0x[0-9a-fA-F]+|\d+", "#", first)


# A line from `info`: (time, logger name, message, fields), formatted by the writer thread.
FastLine = tuple[float, str, str, dict[str, object]]
_STOP = object()


class Writer:
    """The thread that formats and writes every line, many to a write, so the event loop and
    the workers never wait on the log stream. `stop()` writes what is queued and ends it."""

    BATCH = 512
    # After a write, lines gather this long before the next: one wake-up of this thread (and
    # one hand-over of the interpreter lock) per pause, not one per webhook.
    PAUSE = 0.01

    def __init__(self, stream: TextIO, formatter: LineFormatter | None = None) -> None:
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stream = stream
        self._formatter = formatter or JsonFormatter()
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        global _writer
        if _writer is self:
            _writer = None  # `info` falls back to `logging`
        self.queue.put(_STOP)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            items = self._take()
            lines = [self._format(item) for item in items if item is not _STOP]
            if lines:
                self._write("\n".join(lines) + "\n")
            if items[-1] is _STOP:
                return
            if len(items) < self.BATCH:
                time.sleep(self.PAUSE)

    def _take(self) -> list[Any]:
        items = [self.queue.get()]
        while len(items) < self.BATCH and items[-1] is not _STOP:
            try:
                items.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return items

    def _format(self, item: logging.LogRecord | FastLine) -> str:
        try:
            if isinstance(item, logging.LogRecord):
                return self._formatter.format(item)
            created, name, message, fields = item
            return self._formatter.hidden_line(created, "INFO", name, message, fields)
        except Exception as error:  # a line that cannot be formatted must not stop the others
            failure = f"unformattable log line: {error!r}"
            return self._formatter.line(time.time(), "ERROR", __name__, failure, {})

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):
            pass  # the stream is gone (a closed pipe): nowhere left to say so


_writer: Writer | None = None
_hidden: Callable[[], Collection[str]] = frozenset


def hidden_from(text: str) -> str:
    """`text` without the secrets the service knows (see `hide`)."""
    hidden = _hidden()
    return scrub(text, hidden) if hidden else text


def hide(secrets: Callable[[], Collection[str]]) -> None:
    """Scrub what `secrets()` gives (asked at each write: it changes on reload) from every
    line written from now on."""
    global _hidden
    _hidden = secrets


def info(logger: logging.Logger, message: str, **fields: object) -> None:
    """`logger.info(message, extra=fields)` for the hot path: the same line, without a
    `logging` record, formatted by the writer thread. Plain `logging` before `setup`."""
    if not logger.isEnabledFor(logging.INFO):
        return
    writer = _writer
    if writer is None:
        logger.info(message, extra=fields)
    else:
        writer.queue.put((time.time(), logger.name, message, fields))


def _dumps(value: object) -> str:
    try:
        return orjson.dumps(value, default=str).decode()
    except TypeError:  # what orjson refuses (a lone surrogate, a huge integer): the standard
        return json.dumps(value, default=str)  # library writes it


class _Seconds:
    """Times to the millisecond; the part down to the second is formatted once per second,
    not once per line."""

    def __init__(
        self, layout: str, convert: Callable[[float], time.struct_time], end: str = ""
    ) -> None:
        self._layout, self._convert, self._end = layout, convert, end
        self._last = (-1, "")  # the last second formatted, and its text

    def __call__(self, created: float) -> str:
        second, text = self._last
        if int(created) != second:
            second = int(created)
            text = time.strftime(self._layout, self._convert(second))
            self._last = (second, text)
        return f"{text}.{int((created - second) * 1000):03d}{self._end}"


_utc = _Seconds("%Y-%m-%dT%H:%M:%S", time.gmtime, "Z")
_local = _Seconds("%Y-%m-%d %H:%M:%S", time.localtime)


def setup(
    level: LogLevel = "info", log_format: LogFormat = "auto", stream: TextIO | None = None
) -> Writer:
    """Send our logs and uvicorn's to `stream` (stderr) through one writer thread: lines at
    `level` and above, laid out as `log_format` says ("auto": text on a terminal, else JSON).

    Stop the returned writer at shutdown to flush it.
    """
    global _writer
    if _writer is not None:
        _writer.stop()
    stream = stream or sys.stderr
    _writer = Writer(stream, formatter(log_format, stream))
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(_writer.queue)]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # A logger with a level of its own ignores the root's: these say little (and httpx's request
    # lines would show the alert URL, token and all), so warnings at least, even at debug.
    quiet = max(logging.WARNING, root.level)
    for name in ("uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(quiet)
    for name in RATE_LIMITED_LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, RateLimit)]:
            logger.removeFilter(old)
        logger.addFilter(RateLimit())
    return _writer
