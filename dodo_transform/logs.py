"""Structured logs: one JSON object per line, with the webhook-id where there is one.

Nothing here logs headers, bodies, secrets or write keys; callers pass only
the fields named in `log`. Lines about connections are rate-limited (`RateLimit`).
A line per webhook goes through `info`, which hands the writer thread a tuple
instead of a `logging` record (a record costs several times more).
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
from collections.abc import Callable
from typing import Any, TextIO

import orjson

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        if record.exc_info and record.levelno >= logging.ERROR:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


# Loggers that speak for connections, not webhooks: a hostile client or a full file table can
# make them repeat a line thousands of times a second.
CONNECTION_LOGGERS = ("asyncio", "uvicorn.error", "dodo_transform.web.server")


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

    def __init__(self, stream: TextIO) -> None:
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stream = stream
        self._formatter = JsonFormatter()
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
            return _dumps(
                {"time": _timestamp(created), "level": "info", "logger": name, "message": message}
                | fields
            )
        except Exception as error:  # a line that cannot be formatted must not stop the others
            return json.dumps({"level": "error", "message": f"unformattable log line: {error!r}"})

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):
            pass  # the stream is gone (a closed pipe): nowhere left to say so


_writer: Writer | None = None


def info(logger: logging.Logger, message: str, **fields: object) -> None:
    """`logger.info(message, extra=fields)` for the hot path: the same JSON line, without a
    `logging` record, formatted by the writer thread. Plain `logging` before `setup`."""
    if not logger.isEnabledFor(logging.INFO):
        return
    writer = _writer
    if writer is None:
        logger.info(message, extra=fields)
    else:
        writer.queue.put((time.time(), logger.name, message, fields))


def _dumps(line: dict[str, Any]) -> str:
    try:
        return orjson.dumps(line, default=str).decode()
    except TypeError:  # text orjson refuses (a lone surrogate): the standard library escapes it
        return json.dumps(line, default=str)


_last_second = (0, "1970-01-01T00:00:00")  # the last second formatted, and its text


def _timestamp(created: float) -> str:
    global _last_second
    second, text = _last_second
    if int(created) != second:
        second = int(created)
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _last_second = (second, text)
    return f"{text}.{int((created - second) * 1000):03d}Z"


def setup(level: int = logging.INFO) -> Writer:
    """Send our logs and uvicorn's to stderr as JSON lines, through one writer thread.

    Stop the returned writer at shutdown to flush it.
    """
    global _writer
    if _writer is not None:
        _writer.stop()
    _writer = Writer(sys.stderr)
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(_writer.queue)]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in CONNECTION_LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, RateLimit)]:
            logger.removeFilter(old)
        logger.addFilter(RateLimit())
    return _writer
