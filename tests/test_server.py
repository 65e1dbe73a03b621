"""The HTTP server's guard: limits derived from the file limit, proxy headers believed only when
configured, a full house that makes room by closing the connection idle longest, and request
heads bounded in size and fields."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from uvicorn.config import Config
from uvicorn.server import ServerState

from dodo_transform.settings import Settings, load_settings
from dodo_transform.web.server import (
    MAX_HEAD_BYTES,
    MAX_HEADER_FIELDS,
    ConnectionGuard,
    ConnectionLimits,
    GuardedProtocol,
    config,
    connection_limits,
)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(tmp_path)
    for name in ("FORWARDED_ALLOW_IPS", "DODO_TRANSFORM_FORWARDED_ALLOW_IPS"):
        monkeypatch.delenv(name, raising=False)
    return load_settings()


@pytest.mark.parametrize(
    ("file_limit", "max_connections", "backlog"),
    [(256, 144, 16), (1024, 768, 64), (65536, 4096, 2048)],
)
def test_connections_stay_below_the_file_limit(
    settings: Settings, file_limit: int, max_connections: int, backlog: int
) -> None:
    limits = connection_limits(settings, file_limit)
    assert (limits.max_connections, limits.backlog) == (max_connections, backlog)
    assert limits.max_connections + 3 * limits.backlog < file_limit


def test_a_configured_cap_is_kept_below_the_file_limit_too(settings: Settings) -> None:
    assert (
        connection_limits(settings.model_copy(update={"max_connections": 50}), 1024).max_connections
        == 50
    )
    assert (
        connection_limits(
            settings.model_copy(update={"max_connections": 5000}), 1024
        ).max_connections
        == 768
    )


def test_the_soft_file_limit_is_raised_to_the_hard_one() -> None:
    code = "from dodo_transform.web.server import raise_file_limit; print(raise_file_limit())"
    shown = subprocess.run(
        ["prlimit", "--nofile=300:900", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown.strip() == "900"


def test_proxy_headers_are_off_unless_proxies_are_named(settings: Settings) -> None:
    plain = config(FastAPI(), settings, 1024)
    assert plain.proxy_headers is False
    named = config(
        FastAPI(), settings.model_copy(update={"forwarded_allow_ips": "10.0.0.2, 10.0.0.3"}), 1024
    )
    assert named.proxy_headers is True
    assert named.forwarded_allow_ips == ["10.0.0.2", "10.0.0.3"]


def test_the_server_speaks_guarded_http_and_no_websockets(settings: Settings) -> None:
    built = config(FastAPI(), settings, 1024)
    assert isinstance(built.http, type) and issubclass(built.http, GuardedProtocol)
    assert built.ws == "none"
    assert built.backlog == 64


# --- a full house, with fake transports ---------------------------------------------------------


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.closed = False
        self.eof = False
        self.written = b""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.eof, "written after write_eof()"
        self.written += bytes(data)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def never_answers(scope: Any, receive: Any, send: Any) -> None:
    await asyncio.Event().wait()


def test_a_full_house_closes_the_connection_idle_longest_never_one_being_served() -> None:
    async def scenario() -> dict[str, bool]:
        guard = ConnectionGuard(ConnectionLimits(60.0, 60.0, max_connections=3, backlog=8))
        uvicorn_config = Config(
            never_answers, http=guard.protocol(), ws="none", lifespan="off", log_config=None
        )
        uvicorn_config.load()
        state = ServerState()
        transports: dict[str, FakeTransport] = {}

        def connect(name: str, sends: bytes = b"") -> None:
            protocol = uvicorn_config.http_protocol_class(
                config=uvicorn_config, server_state=state, app_state={}
            )  # type: ignore[call-arg]
            transports[name] = FakeTransport()
            protocol.connection_made(transports[name])
            if sends:
                protocol.data_received(sends)

        connect("idle")
        connect("served", b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        connect("half", b"GET / HTTP/1.1\r\n")
        connect("new")  # one too many: the one idle longest goes
        connect("newer")  # and then the next
        for task in list(state.tasks):
            task.cancel()
        await asyncio.gather(*state.tasks, return_exceptions=True)
        return {name: transport.closed for name, transport in transports.items()}

    closed = asyncio.run(scenario())
    assert closed == {"idle": True, "served": False, "half": True, "new": False, "newer": False}


# --- request heads, with fake transports ------------------------------------------------------


def head_with(fields: int, size: int = 0) -> bytes:
    """A GET head with `fields` header fields (Host among them) and, if `size`, padded to
    about `size` bytes by its last field."""
    lines = [b"GET /healthz HTTP/1.1", b"Host: x"]
    lines += [b"X-Field-%d: v" % n for n in range(fields - 1)]
    head = b"\r\n".join(lines)
    if size:
        head += b"\r\nX-Pad: " + b"p" * max(0, size - len(head))
    return head + b"\r\n\r\n"


def serve_one(reads: list[bytes]) -> tuple[FakeTransport, list[dict[str, Any]]]:
    """Feed `reads` to one connection of the guarded protocol; its transport, and the requests
    its app was called with."""
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def scenario() -> FakeTransport:
        guard = ConnectionGuard(ConnectionLimits(60.0, 60.0, max_connections=8, backlog=8))
        uvicorn_config = Config(
            app, http=guard.protocol(), ws="none", lifespan="off", log_config=None
        )
        uvicorn_config.load()
        state = ServerState()
        protocol = uvicorn_config.http_protocol_class(
            config=uvicorn_config, server_state=state, app_state={}
        )  # type: ignore[call-arg]
        transport = FakeTransport()
        protocol.connection_made(transport)
        for data in reads:
            protocol.data_received(data)
        await asyncio.gather(*state.tasks)
        protocol.connection_lost(None)
        return transport

    return asyncio.run(scenario()), seen


def chunks(data: bytes, size: int = 8192) -> list[bytes]:
    return [data[at : at + size] for at in range(0, len(data), size)]


@pytest.mark.parametrize(
    ("head", "reads"),
    [
        (head_with(3, size=2 * 1024 * 1024), "8 KB reads"),
        (head_with(3, size=MAX_HEAD_BYTES + 100), "one read"),
        (head_with(MAX_HEADER_FIELDS + 1), "one read"),
        (head_with(MAX_HEADER_FIELDS * 20), "8 KB reads"),
    ],
    ids=["2 MB head", "a head just too large", "one field too many", "thousands of fields"],
)
def test_a_head_too_large_is_answered_431_and_never_reaches_the_app(
    head: bytes, reads: str
) -> None:
    transport, seen = serve_one(chunks(head) if reads == "8 KB reads" else [head])
    assert transport.written.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"connection: close" in transport.written and transport.eof
    assert seen == []


def test_a_2_mb_head_is_refused_once_64_kb_of_it_came() -> None:
    """Counted as it arrives (from the read after the one it began in): the parser never
    holds much more than the limit."""
    head = head_with(3, size=2 * 1024 * 1024)
    fed = chunks(head)
    transport, _ = serve_one(fed[: 1 + MAX_HEAD_BYTES // 8192 + 1])
    assert transport.written.startswith(b"HTTP/1.1 431")


@pytest.mark.parametrize(
    "request_bytes",
    [
        head_with(MAX_HEADER_FIELDS),
        head_with(3, size=MAX_HEAD_BYTES - 200),
        # A body far larger than the head limit, in the same read as its head.
        b"POST /webhooks/dodo HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n\r\n"
        + b"b" * 300_000,
    ],
    ids=["100 fields", "just under 64 KB", "a large body with its head"],
)
def test_heads_within_the_limits_are_served(request_bytes: bytes) -> None:
    transport, seen = serve_one([request_bytes])
    assert transport.written.startswith(b"HTTP/1.1 200 OK"), transport.written[:100]
    assert len(seen) == 1


def test_a_huge_head_pipelined_behind_a_request_being_served_closes_the_connection() -> None:
    """Counted while it streams in, though the connection is busy with the request before it;
    a 431 cannot go out in the middle of that request's answer, so the connection closes."""

    async def scenario() -> FakeTransport:
        guard = ConnectionGuard(ConnectionLimits(60.0, 60.0, max_connections=8, backlog=8))
        uvicorn_config = Config(
            never_answers, http=guard.protocol(), ws="none", lifespan="off", log_config=None
        )
        uvicorn_config.load()
        state = ServerState()
        protocol = uvicorn_config.http_protocol_class(
            config=uvicorn_config, server_state=state, app_state={}
        )  # type: ignore[call-arg]
        transport = FakeTransport()
        protocol.connection_made(transport)
        protocol.data_received(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n")
        for piece in chunks(b"X-Big: " + b"a" * (MAX_HEAD_BYTES * 2)):
            protocol.data_received(piece)
        for task in list(state.tasks):
            task.cancel()
        await asyncio.gather(*state.tasks, return_exceptions=True)
        return transport

    transport = asyncio.run(scenario())
    assert transport.closed and b"431" not in transport.written
