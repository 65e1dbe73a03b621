"""Structured logs: one JSON object per line, with the webhook-id where there is one.

Nothing here logs headers, bodies, secrets or write keys; callers pass only
the fields named in `log`. Lines about connections are rate-limited (`RateLimit`).
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
from typing import Any

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
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


def setup(level: int = logging.INFO) -> logging.handlers.QueueListener:
    """Send our logs and uvicorn's to stderr as JSON lines.

    Records go through a queue to one listener thread that formats and writes
    them, so the event loop and the workers never wait on the log stream.
    Stop the returned listener at shutdown to flush it.
    """
    output = logging.StreamHandler(sys.stderr)
    output.setFormatter(JsonFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, output)
    listener.start()
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(records)]
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
    return listener
