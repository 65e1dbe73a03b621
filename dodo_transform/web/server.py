"""How uvicorn runs the app: deadlines and a connection cap for clients that are slow on purpose.

uvicorn closes a connection only when it stays idle for `timeout_keep_alive` after a response.
One that sends nothing, half a request head, or a body a byte a minute stays open for good and
holds a file descriptor; enough of them and `accept()` fails with EMFILE, a real webhook waits
in the kernel's queue, and asyncio logs the failure thousands of times a second. The protocol
here adds what uvicorn lacks, as Go's `ReadHeaderTimeout` and nginx's `client_header_timeout`
and `client_body_timeout` do:

- a request head must arrive within `header_timeout` of the connection opening or of the
  previous response, else the connection is closed;
- a request body within `body_timeout` of its head, else it is answered 408 and closed;
- at most `max_connections` are open, below the file-descriptor limit: one more closes the
  connection that has waited longest for a request head (an idle or slow one, never one whose
  request is being served), so a new webhook, which sends its head at once, always gets in.

uvicorn's own `limit_concurrency` does not help here: it still accepts every connection and
only answers 503 to requests, so idle connections keep their descriptors.

Nor does uvicorn bound the request head: httptools gathers a header line of any length (a
2 MB one was served, and 16 connections streaming such heads took the process to 483 MB and a
webhook's answer to 25 s). Here a head of more than `MAX_HEAD_BYTES`, or with more than
`MAX_HEADER_FIELDS` fields, is answered 431 before any of it reaches the app, as nginx and
Node do: counted as it arrives, so no more than one read beyond the limit is ever held. The
connection then stops sending (a FIN after the answer), drops what the client still sends, and
closes `LINGER_SECONDS` later, so the client reads the 431 rather than a reset.

The protocol is uvicorn's httptools one (its C parser, on uvloop: what `uvicorn[standard]`
runs), subclassed at the parser's callbacks: a request head is complete at
`on_headers_complete`, its body at `on_message_complete`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from dodo_transform.settings import Settings

log = logging.getLogger("dodo_transform.web.server")

# Files the HTTP process keeps for itself: the store, the log, the worker's pipes, the watcher.
RESERVED_FILES = 64
# Connections at most by default, whatever the file limit: each one also costs memory.
DEFAULT_MAX_CONNECTIONS = 4096
# The soft file limit is raised toward the hard one, up to this.
WANTED_FILE_LIMIT = 65536
# A request head (request line and header fields) larger than this, or with more fields, is
# refused 431: Dodo's are under 1 KB, and browsers' a few KB (nginx takes 4 x 8 KB by default).
MAX_HEAD_BYTES = 64 * 1024
MAX_HEADER_FIELDS = 100
LINGER_SECONDS = 2.0


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float
    body_timeout: float
    max_connections: int
    backlog: int


def raise_file_limit(wanted: int = WANTED_FILE_LIMIT) -> int:
    """Raise this process's soft file-descriptor limit toward its hard limit (at most
    `wanted`), and return the soft limit now in force. Children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # some platforms refuse (macOS past OPEN_MAX): keep the limit we have
    return wanted if soft == resource.RLIM_INFINITY else soft


def connection_limits(settings: Settings, file_limit: int) -> ConnectionLimits:
    """The limits for a process that may hold `file_limit` open files.

    asyncio accepts up to `backlog` connections per turn of the loop before the protocol sees
    any of them, and frees a closed one's descriptor a turn later; so three backlogs of files
    are kept spare beside the process's own.
    """
    backlog = min(2048, max(8, file_limit // 16))
    budget = file_limit - RESERVED_FILES - 3 * backlog
    wanted = settings.max_connections or DEFAULT_MAX_CONNECTIONS
    return ConnectionLimits(
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        max_connections=max(1, min(wanted, budget)),
        backlog=backlog,
    )


def config(app: FastAPI, settings: Settings, file_limit: int) -> uvicorn.Config:
    """uvicorn's configuration for `app`: the guarded protocol, and proxy headers believed
    only from the proxies the settings name (uvicorn's default believes 127.0.0.1)."""
    limits = connection_limits(settings, file_limit)
    log.info(
        "connection limits",
        extra={
            "file_limit": file_limit,
            **vars(limits),
            "trusted_proxies": settings.trusted_proxies,
        },
    )
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=10,
        access_log=False,
        http=ConnectionGuard(limits).protocol(),
        ws="none",
        backlog=limits.backlog,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
    )


class ConnectionGuard:
    """What the connections of one server share: the limits, the open connections, and those
    waiting for a request head, longest-waiting first."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.open: set[GuardedProtocol] = set()
        self.waiting: dict[GuardedProtocol, None] = {}

    def protocol(self) -> type[GuardedProtocol]:
        """The protocol class uvicorn makes each connection with, bound to this guard."""
        guard = self

        class Protocol(GuardedProtocol):
            pass

        Protocol.guard = guard
        return Protocol

    def admit(self, connection: GuardedProtocol) -> None:
        """Count a new connection in (already waiting for its head); if that is one too many,
        close the one that has waited longest."""
        self.open.add(connection)
        if len(self.open) > self.limits.max_connections:
            oldest = next(iter(self.waiting))
            log.warning(
                "connection limit reached: closed the connection waiting longest for a request",
                extra={"max_connections": self.limits.max_connections},
            )
            self.forget(oldest)
            oldest.transport.close()

    def awaiting_head(self, connection: GuardedProtocol) -> None:
        self.waiting.pop(connection, None)
        self.waiting[connection] = None  # to the back of the queue

    def head_received(self, connection: GuardedProtocol) -> None:
        self.waiting.pop(connection, None)

    def forget(self, connection: GuardedProtocol) -> None:
        self.open.discard(connection)
        self.waiting.pop(connection, None)


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request head and body."""

    guard: ClassVar[ConnectionGuard]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.phase: Literal["head", "body", "served"] = "head"
        self.deadline: asyncio.TimerHandle | None = None
        self.in_head = False  # the parser is inside a request head
        self.head_bytes = 0  # of the head being read, in reads that neither began nor ended it
        self.refused = False  # its head was too large: whatever comes now is dropped

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.await_head()
        self.guard.admit(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.forget(self)
        self.disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        counting = self.in_head
        super().data_received(data)
        if counting and self.in_head and not self.refused:
            # A head was under way before this read and still is after it: all of it was head.
            # (A read in which a head begins is not counted: it may hold a body before it.)
            self.head_bytes += len(data)
            if self.head_bytes > MAX_HEAD_BYTES or len(self.headers) > MAX_HEADER_FIELDS:
                self.refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_head, self.head_bytes = True, 0

    # The parser goes on through the rest of a read after a refusal: none of it counts.

    def on_url(self, url: bytes) -> None:
        if not self.refused:
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.refused:
            super().on_header(name, value)

    def on_body(self, body: bytes) -> None:
        if not self.refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self.refused:
            return
        super().on_message_complete()
        if self.phase == "body":
            self.phase = "served"
            self.disarm()

    def on_headers_complete(self) -> None:
        self.in_head = False
        if self.refused:
            return
        if head_size(self.url, self.headers) > MAX_HEAD_BYTES or (
            len(self.headers) > MAX_HEADER_FIELDS
        ):
            self.refuse_head()  # complete, but too large: the app never sees it
            return
        cycle = self.cycle
        super().on_headers_complete()
        if self.cycle is not cycle:  # a request's app is running, or queued behind another
            self.guard.head_received(self)
            self.arm("body", self.guard.limits.body_timeout, self.body_late)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Not when a pipelined request has already started in the call above.
        if not self.transport.is_closing() and self.cycle.response_complete:
            self.await_head()

    # --- deadlines ----------------------------------------------------------------------------

    def await_head(self) -> None:
        self.arm("head", self.guard.limits.header_timeout, self.head_late)
        self.guard.awaiting_head(self)

    def arm(self, phase: Literal["head", "body"], seconds: float, late: Any) -> None:
        self.disarm()
        self.phase = phase
        self.deadline = self.loop.call_later(seconds, late)

    def disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def head_late(self) -> None:
        log.info(
            "connection closed: no complete request head in time",
            extra={"seconds": self.guard.limits.header_timeout, "client": self.client_host()},
        )
        self.guard.forget(self)
        self.transport.close()

    def body_late(self) -> None:
        seconds = self.guard.limits.body_timeout
        log.info(
            "request body not received in time: answered 408",
            extra={"seconds": seconds, "client": self.client_host()},
        )
        if not self.cycle.response_started:
            self.transport.write(answer_408(seconds))
        # The app's receive() now answers http.disconnect, and its send() does nothing.
        self.cycle.disconnected = True
        self.cycle.message_event.set()
        self.guard.forget(self)
        self.transport.close()

    def refuse_head(self) -> None:
        """Answer 431, send nothing more, drop what comes, and close after `LINGER_SECONDS`
        (or when the client closes first)."""
        log.info(
            "request head too large: answered 431 and closed",
            extra={
                "max_bytes": MAX_HEAD_BYTES,
                "max_fields": MAX_HEADER_FIELDS,
                "client": self.client_host(),
            },
        )
        self.refused = True
        self.disarm()
        if self.cycle is not None and not self.cycle.response_complete:
            # A head pipelined behind a request still being answered: no room for a 431.
            self.cycle.disconnected = True
            self.cycle.message_event.set()
            self.transport.close()
            return
        self.transport.write(answer_431())
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.deadline = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def client_host(self) -> str:
        return self.client[0] if self.client else ""


def head_size(url: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """The size of a parsed request head, as sent (give or take the request line's method)."""
    return len(url) + sum(len(name) + len(value) + 4 for name, value in headers)


def answer_408(seconds: float) -> bytes:
    """The whole 408 response, closing the connection."""
    return closing_answer(
        "408 Request Timeout",
        {"error": f"the request body did not arrive within {seconds:g} s", "reason": "timeout"},
    )


def answer_431() -> bytes:
    """The whole 431 response, closing the connection."""
    return closing_answer(
        "431 Request Header Fields Too Large",
        {
            "error": f"the request head is larger than {MAX_HEAD_BYTES // 1024} KB or has more"
            f" than {MAX_HEADER_FIELDS} header fields",
            "reason": "head_too_large",
        },
    )


def closing_answer(status: str, payload: dict[str, str]) -> bytes:
    body = json.dumps(payload).encode()
    head = (
        f"HTTP/1.1 {status}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body
