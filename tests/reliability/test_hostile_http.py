"""Hostile HTTP against the real server: never a 5xx, never a crash, never an unverified event, and
no request head larger than the server bounds it."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dodo_transform import signing
from dodo_transform.testing import SECRET, SegmentStandIn, Server, process_memory, server_env
from dodo_transform.web.server import MAX_HEADER_FIELDS
from tests.conftest import SHIPPED
from tests.integration.conftest import example

pytestmark = pytest.mark.reliability

HEADER_NAMES = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-type",
    "content-length",
    "x-anything",
    "authorization",
]
# httpx refuses to send values with surrounding spaces; the server never sees those.
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=300).map(
    str.strip
)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the whole module: hypothesis runs many examples against it."""
    import shutil

    workdir = tmp_path_factory.mktemp("hostile")
    shutil.copytree(SHIPPED, workdir / "transforms")
    with SegmentStandIn("wk").running() as standin:
        server = Server(workdir, server_env(standin)).start()
        yield server
        server.stop()


def assert_alive(server: Server) -> None:
    assert server.process is not None and server.process.poll() is None
    assert server.api("GET", "/healthz").status_code == 200


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    headers=st.dictionaries(st.sampled_from(HEADER_NAMES), header_values, max_size=5),
    body=st.binary(max_size=3000),
)
def test_random_requests_never_get_a_5xx(
    shared_server: Server, headers: dict[str, str], body: bytes
) -> None:
    headers.pop("content-length", None)  # let httpx frame the request
    response = shared_server.api(
        "POST", "/webhooks/dodo", content=body, headers=headers, timeout=10
    )
    assert response.status_code in (400, 401, 413), response.text


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.one_of(
        st.binary(max_size=2000),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.text(max_size=8), inner, max_size=4)
            ),
            max_leaves=30,
        ).map(lambda value: json.dumps(value).encode()),
    )
)
def test_signed_random_bodies_are_stored_only_when_they_are_events(
    shared_server: Server, body: bytes
) -> None:
    headers = signing.sign(SECRET, f"msg_h_{time.monotonic_ns()}", body)
    response = shared_server.api(
        "POST", "/webhooks/dodo", content=body, headers=headers, timeout=10
    )
    try:
        parsed = json.loads(body)
        is_event = isinstance(parsed, dict) and isinstance(parsed.get("type"), str)
    except (ValueError, RecursionError):
        is_event = False
    assert response.status_code == (200 if is_event else 400), response.text


def signed(body: bytes, **overrides: str) -> dict[str, str]:
    headers = signing.sign(SECRET, f"msg_fixed_{time.monotonic_ns()}", body)
    headers.update(overrides)
    return headers


BODY = json.dumps(example("payment.succeeded")).encode()
FIXED = [
    ("no comma in signature", BODY, {"webhook-signature": "v1AAAA"}, 401),
    ("wrong version", BODY, {"webhook-signature": "v9,AAAA"}, 401),
    ("bad base64", BODY, {"webhook-signature": "v1,@@@@"}, 401),
    ("hundreds of entries", BODY, {"webhook-signature": " ".join(["v1,AAAA"] * 300)}, 401),
    ("replay outside tolerance", BODY, {"webhook-timestamp": str(int(time.time()) - 3600)}, 401),
    ("future timestamp", BODY, {"webhook-timestamp": str(int(time.time()) + 3600)}, 401),
    ("timestamp not a number", BODY, {"webhook-timestamp": "1e999"}, 401),
    ("non-UTF-8 body, valid signature", b'{"type": "\xc3\x28"}', {}, 400),
    ("deeply nested", b'{"type": "x", "a": ' + b"[" * 100000 + b"]" * 100000 + b"}", {}, 400),
    ("huge number", b'{"type": "x", "n": ' + b"9" * 10000 + b"}", {}, 400),
    ("text/plain content type", BODY, {"content-type": "text/plain"}, 200),
    ("no content type", BODY, {"content-type": ""}, 200),
]


@pytest.mark.parametrize(("name", "body", "overrides", "status"), FIXED, ids=[f[0] for f in FIXED])
def test_fixed_hostile_requests(
    shared_server: Server, name: str, body: bytes, overrides: dict[str, str], status: int
) -> None:
    response = shared_server.api(
        "POST",
        "/webhooks/dodo",
        content=body,
        headers=signed(body, **overrides),
        timeout=30,
    )
    assert response.status_code == status, response.text
    assert_alive(shared_server)


def test_oversize_body_is_refused_without_reading_it_all(shared_server: Server) -> None:
    body = b'{"type": "x", "pad": "' + b"x" * (8 * 1024 * 1024) + b'"}'
    response = shared_server.api(
        "POST", "/webhooks/dodo", content=body, headers=signed(body), timeout=30
    )
    assert response.status_code == 413


def test_oversize_chunked_body_is_refused(shared_server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(64):
            yield b"x" * 65536

    response = shared_server.api(
        "POST", "/webhooks/dodo", content=chunks(), headers=signed(b""), timeout=30
    )
    assert response.status_code == 413


def test_a_slow_body_that_never_finishes_hurts_nothing(shared_server: Server) -> None:
    with socket.create_connection(("127.0.0.1", shared_server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /webhooks/dodo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
            b'Content-Type: application/json\r\n\r\n{"type": '
        )
        time.sleep(1.0)  # the point: the server keeps serving while the body is held back
        assert_alive(shared_server)
    assert_alive(shared_server)


def test_only_verified_events_were_ever_stored(shared_server: Server) -> None:
    # One signed event of its own: on the suite's workers (worksteal) the module's other tests
    # may have run elsewhere, against another worker's server, and stored nothing here.
    stored = shared_server.api("POST", "/webhooks/dodo", content=BODY, headers=signed(BODY))
    assert stored.status_code == 200, stored.text
    events = shared_server.api("GET", "/api/events", params={"limit": 1000}).json()
    assert events, "the signed tests above stored some events"
    assert all(event["webhook_id"].startswith(("msg_h_", "msg_fixed_")) for event in events)


# --- request heads --------------------------------------------------------------------------

HUGE_HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (2 * 1024 * 1024)


def send_head(port: int, head: bytes) -> bytes:
    """Send `head` as fast as the server takes it, then read what it answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        # Closed before all of it went, maybe: the answer is still there to read.
        with contextlib.suppress(OSError):
            sock.sendall(head + b"\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_2_mb_header_is_answered_431_and_the_connection_closed(shared_server: Server) -> None:
    answer = send_head(shared_server.port, HUGE_HEAD)
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), answer[:200]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["reason"] == "head_too_large"
    assert_alive(shared_server)


def head_with_fields(count: int) -> bytes:
    fields = [b"Host: x", b"Connection: close"] + [b"X-Field-%d: v" % n for n in range(count - 2)]
    return b"\r\n".join([b"GET /healthz HTTP/1.1", *fields])


def test_more_than_100_header_fields_are_answered_431(shared_server: Server) -> None:
    refused = send_head(shared_server.port, head_with_fields(MAX_HEADER_FIELDS + 1))
    assert refused.startswith(b"HTTP/1.1 431 "), refused[:200]
    served = send_head(shared_server.port, head_with_fields(MAX_HEADER_FIELDS))
    assert served.startswith(b"HTTP/1.1 200 "), served[:200]


def flood(port: int, stop: threading.Event) -> None:
    """Stream huge heads, a new connection each time the server closes one."""
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
                while not stop.is_set():
                    sock.sendall(b"a" * 65536)
        except OSError:
            continue


def test_16_connections_streaming_huge_heads_keep_neither_a_webhook_nor_memory(
    tmp_path: Path,
) -> None:
    (tmp_path / "transforms").mkdir()
    (tmp_path / "transforms" / "noop.js").write_text("function handler(w) { return null; }")
    with SegmentStandIn("wk").running() as standin:
        server = Server(tmp_path, server_env(standin)).start()
        assert server.process is not None
        try:
            before = process_memory(server.process.pid).peak_mb
            stop = threading.Event()
            floods = [
                threading.Thread(target=flood, args=(server.port, stop), daemon=True)
                for _ in range(16)
            ]
            for thread in floods:
                thread.start()
            time.sleep(2.0)
            started = time.monotonic()
            stored = server.post(example("payment.succeeded"))
            took = time.monotonic() - started
            stop.set()
            for thread in floods:
                thread.join(10)
            grew = process_memory(server.process.pid).peak_mb - before
        finally:
            server.stop()
    assert stored.status_code == 200
    assert took < 1.0, f"the webhook waited {took:.1f} s"
    assert grew < 64, f"the HTTP process grew by {grew:.0f} MB"
