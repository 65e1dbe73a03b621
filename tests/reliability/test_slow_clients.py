"""Slow and idle clients against the real server: a stalled body is answered 408 and closed, a
connection that never finishes its request head is closed, and idle connections beyond the
process's file limit neither keep a real webhook out nor flood the log."""

from __future__ import annotations

import json
import os
import select
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from dodo_transform.testing import WRITE_KEY, SegmentStandIn, Server, server_env
from tests.conftest import shipped_transforms
from tests.integration.conftest import example

pytestmark = pytest.mark.reliability

HEADER_TIMEOUT = 1.5
BODY_TIMEOUT = 1.5
# How long past its timeout a closing may take before we call it not closed.
SLACK = 3.0
HEAD = b"POST /webhooks/dodo HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`serve` with short header and body timeouts, for the module: each test's connections
    are closed by the time it ends, which is what each test checks."""
    workdir = tmp_path_factory.mktemp("quick")
    shipped_transforms(workdir / "transforms")
    with SegmentStandIn(WRITE_KEY).running() as standin:
        env = server_env(
            standin,
            DODO_TRANSFORM_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
            DODO_TRANSFORM_BODY_TIMEOUT=str(BODY_TIMEOUT),
        )
        server = Server(workdir, env).start()
        yield server
        server.stop()


def read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed it
    (seconds from now); fails if it is still open after `limit` seconds."""
    start = time.monotonic()
    sock.settimeout(limit)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the connection was still open after {limit} s; received {received!r}")
    return received, time.monotonic() - start


STALLED = 200


def test_stalled_bodies_are_answered_408_and_closed(quick: Server) -> None:
    with ExitStack() as stack:
        stalled = []
        for _ in range(STALLED):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", quick.port), 5))
            sock.sendall(HEAD + b'Content-Length: 1000\r\n\r\n{"type": ')
            stalled.append(sock)
        started = time.monotonic()
        answers = [read_until_closed(sock, BODY_TIMEOUT + SLACK)[0] for sock in stalled]
        after = time.monotonic() - started
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers), answers[0]
    assert b"connection: close" in answers[0].lower()
    assert after < BODY_TIMEOUT + SLACK
    assert quick.post(example("payment.succeeded")).status_code == 200


def drip(sock: socket.socket, data: bytes, every: float, limit: float) -> float:
    """Send `data` one byte every `every` seconds until the server answers or closes, all sent,
    or `limit` seconds pass; return the seconds taken."""
    start = time.monotonic()
    for byte in data:
        if select.select([sock], [], [], every)[0] or time.monotonic() - start > limit:
            break  # the server spoke or closed: stop before a reset loses what it said
        sock.sendall(bytes([byte]))
    return time.monotonic() - start


def test_a_body_dripped_byte_by_byte_is_cut_off_at_the_deadline(quick: Server) -> None:
    with socket.create_connection(("127.0.0.1", quick.port), timeout=5) as sock:
        sock.sendall(HEAD + b"Content-Length: 1000\r\n\r\n")
        # One byte every 0.2 s would take 200 s: the deadline is for the whole body.
        took = drip(sock, b" " * 1000, 0.2, BODY_TIMEOUT + 2 * SLACK)
        answer, _ = read_until_closed(sock, SLACK)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert took < BODY_TIMEOUT + SLACK


@pytest.mark.parametrize(
    "sent",
    [b"", b"POST /webhooks/dodo HTTP/1.1\r\nHost: relay\r\n"],
    ids=["nothing", "half a head"],
)
def test_a_connection_that_never_finishes_its_head_is_closed(quick: Server, sent: bytes) -> None:
    with socket.create_connection(("127.0.0.1", quick.port), timeout=5) as sock:
        sock.sendall(sent)
        answer, after = read_until_closed(sock, HEADER_TIMEOUT + SLACK)
    assert answer == b""
    assert after < HEADER_TIMEOUT + SLACK


def test_a_head_dripped_byte_by_byte_is_cut_off_at_the_deadline(quick: Server) -> None:
    with socket.create_connection(("127.0.0.1", quick.port), timeout=5) as sock:
        # 0.1 s a byte: the whole head would take over 20 s.
        took = drip(sock, HEAD + b"X-Padding: " + b"p" * 200, 0.1, HEADER_TIMEOUT + 2 * SLACK)
        answer, _ = read_until_closed(sock, SLACK)
    assert answer == b""
    assert took < HEADER_TIMEOUT + SLACK


def read_response(sock: socket.socket) -> bytes:
    """One whole response with a Content-Length, however many segments it comes in (the
    server may write its head and its body apart)."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_kept_alive_connection_must_send_its_next_head_in_time(quick: Server) -> None:
    body = json.dumps({"type": "ping"}).encode()
    with socket.create_connection(("127.0.0.1", quick.port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n")
        first = read_response(sock)
        assert first.startswith(b"HTTP/1.1 200 ")
        sock.sendall(HEAD + f"Content-Length: {len(body)}\r\n".encode())  # and no more
        answer, after = read_until_closed(sock, HEADER_TIMEOUT + SLACK)
    assert answer == b""
    assert after < HEADER_TIMEOUT + SLACK


# --- idle connections beyond the file limit -------------------------------------------------------

FILE_LIMIT = 256  # the server's listen backlog is then 16
IDLE = 320  # more connections than the server may have files


class FileLimitedServer(Server):
    """The server under a file-descriptor limit it cannot raise (soft and hard alike)."""

    def command(self) -> list[str]:
        return ["prlimit", f"--nofile={FILE_LIMIT}:{FILE_LIMIT}", *super().command()]


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_idle_connections_beyond_the_file_limit_keep_no_webhook_out(
    workdir: Path, standin: SegmentStandIn
) -> None:
    # Idle connections are not closed by the header timeout during this test: the connection
    # cap alone must keep room for the real webhook.
    env = server_env(standin, DODO_TRANSFORM_HEADER_TIMEOUT="120")
    server = FileLimitedServer(workdir, env).start()
    assert server.process is not None
    log_start = server.log.stat().st_size
    try:
        with ExitStack() as idle:
            for n in range(IDLE):
                idle.enter_context(socket.create_connection(("127.0.0.1", server.port), 5))
                if n % 8 == 7:
                    # Let the server accept: a full listen queue drops connects for a second.
                    time.sleep(0.02)
            time.sleep(1.0)  # let the server take them all in
            started = time.monotonic()
            response = server.post(example("payment.succeeded"))
            took = time.monotonic() - started
            assert response.status_code == 200, response.text
            assert took < 5, f"the webhook took {took:.1f} s"
            assert server.api("GET", "/readyz").status_code == 200
            assert open_fds(server.process.pid) < FILE_LIMIT
        time.sleep(1.0)  # the server sees them close
        log = server.log.read_bytes()[log_start:]
        assert b"Too many open files" not in log
        assert len(log) < 64 * 1024, f"{len(log)} bytes of log: {log[-2000:]!r}"
    finally:
        server.stop()
