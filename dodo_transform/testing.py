"""Test doubles for dodo-transform, as `httpx.MockTransport` is for httpx.

`SegmentStandIn` is a real local HTTP server that answers like Segment's API, records every
request, checks the write key and fails on demand; `DestinationStandIn` stands in for any
other destination, and can be slow, trickle its answer, send a huge one or fail for a while.

`InProcessServer` runs the whole service in this process, on a thread of its own, served on a
free loopback port as `serve` serves it; `Server` runs `dodo-transform serve` in a process of
its own, to start, SIGKILL, restart and stop. Both have one face: post signed webhooks, call
the admin API, and wait on what it shows (a delivery's status, a reloaded transform) rather
than for a fixed time. Start a process only where the process is the point (a SIGKILL, the
worker's supervision, its memory, signals); everything else is quicker in process. Our
integration tests, reliability tests and benchmarks use these, and so can your own tests:

    with SegmentStandIn(WRITE_KEY).running() as segment:
        with InProcessServer(workdir, **server_settings(segment)) as server:
            server.post(body)
            segment.wait_for(2)

`in_process` is the same service without a socket: its app behind an `httpx.AsyncClient`.

Nothing here imports pytest; a failed wait raises `AssertionError`, which every test runner
reports as a failure.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import httpx
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from dodo_transform import logs, signing, startup
from dodo_transform.pipeline import worker
from dodo_transform.service import Service, build_service
from dodo_transform.settings import Settings, load_settings
from dodo_transform.transforms.engine import Transform
from dodo_transform.transforms.registry import Registry
from dodo_transform.web import server as http_server

__all__ = [
    "SECRET",
    "WRITE_KEY",
    "Answer",
    "DestinationStandIn",
    "InProcess",
    "InProcessServer",
    "Memory",
    "Received",
    "Reply",
    "SegmentStandIn",
    "Served",
    "Server",
    "children",
    "descendants",
    "free_port",
    "hold_to_cpus",
    "in_process",
    "process_memory",
    "server_env",
    "server_settings",
    "wait_until",
    "without_our_settings",
]

# Credentials for tests only: the server is started with them, and the stand-in expects them.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WRITE_KEY = "wk_integration_Secret123"

T = TypeVar("T")
POLL_SECONDS = 0.05
# Made once: httpx makes a TLS context for every call of `httpx.get` or `.post` otherwise, and
# loads the CA bundle into it (some 50 ms a call, for services that speak plain HTTP here).
_TLS = ssl.create_default_context()


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 15.0,
    what: str = "condition",
    detail: Callable[[], str] = lambda: "",
) -> T:
    """Call `predicate` until it returns something truthy, and return that; after `timeout`
    seconds raise `AssertionError` naming `what`, followed by `detail()`."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{detail()}")
        time.sleep(POLL_SECONDS)


def _wait_on(
    changed: threading.Condition,
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    detail: Callable[[], str],
) -> None:
    """`wait_until` for a predicate on what `changed` guards: woken by each change."""
    with changed:
        if changed.wait_for(predicate, timeout):
            return
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{detail()}")


# --- the Segment stand-in ---------------------------------------------------------------------


@dataclass
class Received:
    """One request the stand-in received, with the status it answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 200
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The Segment messages in this request (a batch's items, or the one call)."""
        if self.path == "/v1/batch":
            return list(self.json["batch"])
        return [self.json | {"type": self.path.rsplit("/", 1)[-1]}]


@dataclass
class Reply:
    """How the stand-in answers: a status, extra headers, and a delay before answering."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class _LocalServer:
    """A real HTTP server on 127.0.0.1 in a thread of its own, for a test to stand behind a
    destination. Its `_lock` is notified on each request, so a wait wakes when one arrives,
    not at the next poll."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        self._lock = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @contextmanager
    def running(self) -> Iterator[Self]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()

    def _wait(self, count: int, counted: Callable[[], int], timeout: float, what: str) -> None:
        """Until `counted()` reaches `count`; else fail naming `what` and how many came."""
        _wait_on(
            self._lock,
            lambda: counted() >= count,
            timeout,
            f"{count} {what} at {self.url}",
            lambda: f": {counted()} arrived",
        )


class SegmentStandIn(_LocalServer):
    """Answers like Segment's API. `script` replies are used first, then `default`.

    A 2xx reply becomes 401 without Basic auth for `write_key`, and 400 when the body is not
    Segment's JSON or `reject_message` refuses one of its messages.
    """

    def __init__(
        self,
        write_key: str = WRITE_KEY,
        *,
        port: int = 0,
        on_request: Callable[[Received], None] | None = None,
    ) -> None:
        self.write_key = write_key
        self.received: list[Received] = []
        # Called with each request as it is answered (`python -m dodo_transform.testing` prints).
        self.on_request = on_request
        self.script: list[Reply] = []
        self.default = Reply()
        self.reject_message: Callable[[dict[str, Any]], bool] = lambda message: False
        super().__init__(self._handler(), port)

    def accepted(self) -> list[Received]:
        """Requests that were answered 2xx."""
        with self._lock:
            return [r for r in self.received if r.status < 300]

    def messages(self) -> list[dict[str, Any]]:
        """Every message Segment accepted, in order."""
        return [message for request in self.accepted() for message in request.messages]

    def wait_for(self, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Wait until `count` messages were accepted; return them all."""
        self._wait(count, lambda: len(self.messages()), timeout, "accepted messages")
        return self.messages()

    def _refuses(self, path: str, body: bytes) -> bool:
        try:
            messages = Received("POST", path, {}, body).messages
        except (ValueError, KeyError, TypeError):
            return True  # Segment answers 400 to bad JSON
        return any(self.reject_message(message) for message in messages)

    def _next_reply(self) -> Reply:
        with self._lock:
            return self.script.pop(0) if self.script else self.default

    def _status(self, reply: Reply, authorization: str | None, path: str, body: bytes) -> int:
        expected = "Basic " + base64.b64encode(f"{self.write_key}:".encode()).decode()
        if reply.status < 300 and authorization != expected:
            return 401
        if reply.status < 300 and self._refuses(path, body):
            return 400
        return reply.status

    def _record(self, request: Received) -> None:
        with self._lock:
            self.received.append(request)
            self._lock.notify_all()
        if self.on_request is not None:
            self.on_request(request)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Segment's API does

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                reply = standin._next_reply()
                if reply.delay:
                    time.sleep(reply.delay)  # a slow Segment
                status = standin._status(reply, self.headers.get("Authorization"), self.path, body)
                standin._record(Received(self.command, self.path, dict(self.headers), body, status))
                self._answer(status, reply.headers)

            do_PUT = do_POST
            do_PATCH = do_POST

            def _answer(self, status: int, headers: dict[str, str]) -> None:
                payload = b'{"success": true}' if status < 300 else b'{"error": "stand-in says no"}'
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@dataclass
class Answer:
    """How a `DestinationStandIn` answers one request."""

    status: int = 200
    delay: float = 0.0  # seconds before the answer's head
    body: bytes = b'{"ok": true}'
    # A body of this many bytes instead, made as it is sent (the stand-in holds none of it).
    body_bytes: int = 0
    # Send the body one byte per this many seconds, after the head (a trickling destination).
    trickle_seconds: float = 0.0
    # Answer with the request's headers in the body, as a careless API echoes credentials.
    echo_headers: bool = False


class DestinationStandIn(_LocalServer):
    """Any destination (Slack, Resend, a webhook): a real local HTTP server that records every
    request and answers as `answer` says: an `Answer`, or a function of the request giving one
    (a destination that fails for a minute, then recovers)."""

    def __init__(self, answer: Answer | Callable[[Received], Answer] | None = None) -> None:
        self.answer = answer or Answer()
        self.received: list[Received] = []
        self.connections = 0  # TCP connections accepted (kept-alive ones serve several requests)
        super().__init__(self._handler())

    def requests(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        """Wait until `count` requests arrived; return them all."""
        self._wait(count, lambda: len(self.requests()), timeout, "requests")
        return self.requests()

    def _answer_for(self, request: Received) -> Answer:
        return self.answer(request) if callable(self.answer) else self.answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with standin._lock:
                    standin.connections += 1

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = Received(self.command, self.path, dict(self.headers), body)
                answer = standin._answer_for(request)
                request.status = answer.status
                with standin._lock:
                    standin.received.append(request)
                    standin._lock.notify_all()
                time.sleep(answer.delay)
                try:
                    self._answer(answer, request)
                except OSError:  # the client gave up: what a deadline does
                    self.close_connection = True

            do_PUT = do_POST
            do_PATCH = do_POST

            def _answer(self, answer: Answer, request: Received) -> None:
                body = json.dumps(request.headers).encode() if answer.echo_headers else answer.body
                size = answer.body_bytes or len(body)
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(size))
                self.end_headers()
                self.wfile.flush()
                if answer.body_bytes:
                    chunk = b"x" * 65536
                    for start in range(0, size, len(chunk)):
                        self.wfile.write(chunk[: size - start])
                elif answer.trickle_seconds:
                    for byte in body:
                        time.sleep(answer.trickle_seconds)
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                else:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@dataclass(frozen=True)
class ReceivedSpan:
    """One span an `OtlpReceiver` was sent, as plain values."""

    name: str
    trace_id: str  # hex
    span_id: str
    parent_span_id: str  # "" for a root span
    attributes: dict[str, Any]
    start_ns: int
    end_ns: int


class OtlpReceiver(_LocalServer):
    """An OpenTelemetry collector's OTLP/HTTP traces endpoint (`POST /v1/traces`, protobuf),
    on 127.0.0.1: it decodes each ExportTraceServiceRequest and keeps its spans. Point
    `OTEL_EXPORTER_OTLP_ENDPOINT` (`otel_endpoint`) at `url`."""

    def __init__(self) -> None:
        self._spans: list[ReceivedSpan] = []
        super().__init__(self._handler())

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def wait_for(self, count: int, timeout: float = 15.0) -> list[ReceivedSpan]:
        self._wait(count, lambda: len(self.spans()), timeout, "spans")
        return self.spans()

    def _keep(self, body: bytes) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        found = [
            ReceivedSpan(
                span.name,
                span.trace_id.hex(),
                span.span_id.hex(),
                span.parent_span_id.hex(),
                {a.key: _any_value(a.value) for a in span.attributes},
                span.start_time_unix_nano,
                span.end_time_unix_nano,
            )
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]
        with self._lock:
            self._spans += found
            self._lock.notify_all()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = 404
                if self.path == "/v1/traces":
                    receiver._keep(body)
                    status = 200
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _any_value(value: Any) -> Any:
    """An OTLP AnyValue as Python's value (strings, numbers and booleans: what spans carry)."""
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)


# --- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children(pid: int) -> list[int]:
    """The pids of the live child processes of `pid`, read from /proc (Linux)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # the process ended while we looked
        # The command name in parentheses may hold spaces; the parent pid follows the state.
        if int(text.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def descendants(pid: int) -> list[int]:
    """The pids of the children of `pid`, their children, and so on."""
    found = children(pid)
    return found + [grandchild for child in found for grandchild in descendants(child)]


def hold_to_cpus(pid: int, cpus: set[int]) -> None:
    """Run process `pid` and its descendants on `cpus` only: every thread they have now, and
    (as threads and processes inherit their creator's) every one they start later (Linux)."""
    for process in [pid, *descendants(pid)]:
        for task in Path(f"/proc/{process}/task").glob("[0-9]*"):
            with contextlib.suppress(ProcessLookupError):  # the thread ended meanwhile
                os.sched_setaffinity(int(task.name), cpus)


@dataclass(frozen=True)
class Memory:
    """A process's resident set now and its peak so far, in MB (VmRSS and VmHWM)."""

    rss_mb: float
    peak_mb: float


def process_memory(pid: int) -> Memory:
    """The memory of process `pid`, from /proc/<pid>/status (Linux)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024  # reported in kB
    return Memory(fields["VmRSS"], fields["VmHWM"])


# The prefixes of every variable the service reads (OTEL_: tracing's standard variables).
OUR_PREFIXES = ("DODO_", "SEGMENT_", "OTEL_")


def without_our_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without any DODO_* or SEGMENT_* variable: a test's service has only the
    settings the test gives it, whatever the person running the tests has exported."""
    return {key: value for key, value in environ.items() if not key.startswith(OUR_PREFIXES)}


def server_env(standin: SegmentStandIn, **extra: str) -> dict[str, str]:
    """This process's environment without our settings, then a server's that delivers to
    `standin` with `SECRET`, retries after 0.1 s, and imports this copy of dodo_transform;
    then `extra`."""
    env = without_our_settings(os.environ)
    package_parent = str(Path(__file__).resolve().parent.parent)
    env |= {
        "DODO_WEBHOOK_SECRET": SECRET,
        "SEGMENT_WRITE_KEY": standin.write_key,
        "SEGMENT_ENDPOINT": standin.url,
        "DODO_TRANSFORM_RETRY_BASE_SECONDS": "0.1",
        "PYTHONPATH": os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")])),
    }
    return env | extra


def server_settings(standin: SegmentStandIn, **extra: Any) -> dict[str, Any]:
    """`server_env` as `Settings` fields, for an `InProcessServer`: deliver to `standin` with
    `SECRET`, retry after 0.1 s; then `extra`."""
    return {
        "webhook_secret": SECRET,
        "segment_write_key": standin.write_key,
        "segment_endpoint": standin.url,
        "retry_base_seconds": 0.1,
    } | extra


class Served:
    """A service answering on 127.0.0.1:`port`, in a process of its own (`Server`) or in this
    one (`InProcessServer`): post signed webhooks, call the admin API, and wait on what it
    shows (a delivery's status, an empty queue) rather than for a fixed time. Its log lines
    are in `log`."""

    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def post(
        self,
        body: bytes | dict[str, Any],
        *,
        webhook_id: str | None = None,
        headers: dict[str, str] | None = None,
        secret: str = SECRET,
        timestamp: int | None = None,
    ) -> httpx.Response:
        """Sign `body` as Dodo would and post it to the webhook endpoint."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        signed = signing.sign(secret, webhook_id or f"msg_{uuid.uuid4().hex}", raw, timestamp)
        return httpx.post(
            f"{self.url}/webhooks/dodo",
            content=raw,
            headers={"Content-Type": "application/json", **signed, **(headers or {})},
            timeout=15,
            verify=_TLS,
        )

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A call of the admin API (or any path), as `httpx.request` takes it."""
        options: dict[str, Any] = {"timeout": 30, "verify": _TLS} | kwargs
        return httpx.request(method, f"{self.url}{path}", **options)

    def deliveries(self, status: str | None = None) -> list[dict[str, Any]]:
        params = {"limit": 1000} | ({"status": status} if status else {})
        answer: list[dict[str, Any]] = self.api("GET", "/api/deliveries", params=params).json()
        return answer

    def deliveries_of(self, transform: str) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = self.api(
            "GET", "/api/deliveries", params={"limit": 1000, "transform": transform}
        ).json()
        return answer

    def queue_depths(self) -> dict[str, float]:
        """Work waiting, from `/metrics`: `events` not yet transformed, `deliveries` not yet
        final (waiting for a retry or in flight included)."""
        text = self.api("GET", "/metrics").text
        return {
            sample.labels["kind"]: sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "dodo_queue_depth"
            for sample in family.samples
        }

    def versions(self) -> dict[str, str | None]:
        """Each transform's loaded version (a hash of its source; None if it never loaded)."""
        answer = self.api("GET", "/api/transforms").json()
        return {t["name"]: t["version"] for t in answer}

    def log_tail(self, size: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-size:] if self.log.exists() else ""

    def wait_until(
        self, predicate: Callable[[], T], timeout: float = 15.0, what: str = "condition"
    ) -> T:
        """`wait_until`, with the server's log tail in the failure."""
        return wait_until(predicate, timeout, what, lambda: f"; log tail: {self.log_tail()}")

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until no event waits to be transformed and no delivery to be final: from then
        on the server sends nothing of its own accord, so what was sent is all there will be."""
        self.wait_until(
            lambda: self.queue_depths() == {"events": 0.0, "deliveries": 0.0},
            timeout,
            "the server to have no work left",
        )


class Server(Served):
    """`dodo-transform serve` in its own process, restartable and killable: for tests of the
    process itself (a SIGKILL, the worker process and its supervision, signals, memory, file
    limits, the console script). Everything else is quicker with an `InProcessServer`.

    It serves `workdir/transforms` and keeps its data in `workdir/data`; its stdout and stderr
    (both processes' JSON logs) go to `workdir/server.log`.
    """

    ready_path = "/readyz"

    def __init__(self, workdir: Path, env: Mapping[str, str]) -> None:
        self.workdir = workdir
        self.env = dict(env)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / "server.log"
        self._log_start = 0  # where this run's lines begin in the log (it survives restarts)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "dodo_transform",
            "serve",
            "--port",
            str(self.port),
            "--transforms",
            str(self.workdir / "transforms"),
            "--data-dir",
            str(self.workdir / "data"),
        ]

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> Server:
        """Start the process and wait until `ready_path` answers 200."""
        self._log_start = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), cwd=self.workdir, env=self.env, stdout=log, stderr=log
            )
        self.wait_until(self._ready, timeout, "the server to be ready")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"server exited: {self.log_tail(3000)}")
        try:
            return self.api("GET", self.ready_path, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown at all, as when the machine loses power."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM and wait for a clean shutdown (SIGKILL after 15 s)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def worker_pid(self) -> int | None:
        """The worker process (where the transforms run), if the server has one now.

        It is the child started by multiprocessing's spawn; the server's other child, if any,
        is multiprocessing's resource tracker.
        """
        assert self.process is not None
        for pid in children(self.process.pid):
            try:
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return pid
            except OSError:
                continue
        return None

    # --- waiting on what it shows ---------------------------------------------------------------

    @contextmanager
    def reloading(self, *names: str, timeout: float = 15.0) -> Iterator[None]:
        """Around a change to the files of transforms `names` (new, changed or deleted): on
        leaving, wait until every process that runs them has the new version in service."""
        before = self.versions()
        mark = self.log.stat().st_size
        yield
        for name in names:
            self.wait_for_version(name, before.get(name), since=mark, timeout=timeout)

    def wait_for_version(
        self, name: str, old_version: str | None, *, since: int | None = None, timeout: float = 15.0
    ) -> str | None:
        """Wait until transform `name` has replaced `old_version` with another (None: the
        file is gone) in every process that runs transforms; return the new version.

        The HTTP process answers `/api/transforms` from its own registry, and the worker
        process, which runs the transforms, reloads its own on its own watcher; it shows that
        only in the log (the only process that logs loads). So this waits for the API to show
        a new version, then for the log (from `since`, a byte offset, or this run's start) to
        show the pipeline's process loading it.
        """
        start = self._log_start if since is None else since

        def reloaded() -> list[str | None]:
            version = self.versions().get(name)
            if version == old_version or not self._loaded_everywhere(name, version, start):
                return []
            return [version]

        (version,) = self.wait_until(reloaded, timeout, f"transform {name} to be reloaded")
        return version

    def _loaded_everywhere(self, name: str, version: str | None, since: int) -> bool:
        if version is None:
            done = {f"transform {name} removed"}
        else:
            done = {f"transform {name} loaded (version {version})"}
        seen = 0
        for message in self._log_messages(since, "dodo_transform.transforms.registry"):
            # A reload may pass through an intermediate version (a file read half-written):
            # what counts is reaching `version`.
            seen += message in done or (
                version is not None
                and message.startswith(f"transform {name} reloaded (")
                and message.endswith(f" -> {version})")
            )
        return seen >= 1

    def _log_messages(self, since: int, logger: str) -> Iterator[str]:
        with self.log.open("rb") as log:
            log.seek(since)
            lines = log.read().splitlines()
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # the banner, or a line still being written
            if isinstance(record, dict) and record.get("logger") == logger:
                yield str(record.get("message", ""))


class InProcessServer(Served):
    """The whole service in this process: the web edge and the pipeline on a thread of their
    own, served by uvicorn as `serve` configures it, on a free loopback port. It has
    `Server`'s face (post, api, deliveries, reloading, wait_idle ...) and costs a thread where
    `Server` costs two processes; `service` is the running `Service`, to look inside.

    It serves `workdir/transforms`, keeps its data in `workdir/data`, and writes its banner and
    its log lines (JSON, secrets scrubbed, as `serve` writes them) to `workdir/server.log`.
    `settings` are `Settings` fields (`server_settings` gives a stand-in's); the environment
    fills in the rest, as for `serve`. The pipeline runs in this process
    (`worker_process=False`), where its sandbox processes are children of this one.
    """

    def __init__(self, workdir: Path, **settings: Any) -> None:
        self.workdir = workdir
        self.settings = settings  # change them between a `stop` and a `start`
        self.port = free_port()
        self.log = workdir / "server.log"
        self.service: Service | None = None
        self._uvicorn: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._logging: _LogFile | None = None

    def start(self, timeout: float = 30.0) -> InProcessServer:
        """Build the service, start serving it, and wait until `/readyz` answers 200."""
        fields: dict[str, Any] = {
            "transforms": self.workdir / "transforms",
            "data_dir": self.workdir / "data",
            "port": self.port,
            "worker_process": False,
        }
        settings = load_settings(None, **(fields | self.settings))
        self._logging = _LogFile(self.log)
        # The pipeline polls as often as the worker process does, which it stands in for.
        self.service = build_service(settings, idle_poll_seconds=worker.POLL_SECONDS)
        self._logging.write(startup.banner(settings, created_secret=self.service.created_secret))
        config = http_server.config(self.service.app, settings, http_server.raise_file_limit())
        self._uvicorn = uvicorn.Server(config)
        # A daemon: a test that never stops its server must not keep the interpreter waiting.
        self._thread = threading.Thread(
            target=self._uvicorn.run, name=f"in-process-server-{self.port}", daemon=True
        )
        self._thread.start()
        self.wait_until(self._ready, timeout, "the server to be ready")
        return self

    def _ready(self) -> bool:
        assert self._thread is not None
        if not self._thread.is_alive():
            raise AssertionError(f"the server stopped: {self.log_tail(3000)}")
        try:
            return self.api("GET", "/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, timeout: float = 30.0) -> None:
        """Shut down as `serve` does on SIGTERM: stop taking requests, stop the pipeline
        (work in flight finishes or is released), close the store."""
        if self._uvicorn is None or self._thread is None:
            return
        self._uvicorn.should_exit = True
        self._thread.join(timeout)
        if self._logging is not None:
            self._logging.close()
        stuck = self._thread.is_alive()
        self._uvicorn = self._thread = None
        if stuck:
            raise AssertionError(f"the server did not stop within {timeout:g} s")

    def __enter__(self) -> InProcessServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- waiting on what it shows ---------------------------------------------------------------

    @contextmanager
    def reloading(self, *names: str, timeout: float = 15.0) -> Iterator[None]:
        """Around a change to the files of transforms `names` (new, changed or deleted): on
        leaving, wait until the service runs what each file holds now (or, for a file that is
        gone, no longer runs it). The file must compile: a broken one never goes in service."""
        yield
        for name in names:
            self.wait_until(
                lambda name=name: self._runs_the_file(name),  # type: ignore[misc]
                timeout,
                f"transform {name} to be reloaded",
            )

    def wait_for_version(
        self, name: str, old_version: str | None, *, timeout: float = 15.0
    ) -> str | None:
        """Wait until transform `name` has replaced `old_version` with another (None: the
        file is gone); return the new version."""
        (version,) = self.wait_until(
            lambda: [v] if (v := self._version(name)) != old_version else [],
            timeout,
            f"transform {name} to be reloaded",
        )
        return version

    def _runs_the_file(self, name: str) -> bool:
        try:
            source = (self.workdir / "transforms" / f"{name}.js").read_text()
        except FileNotFoundError:
            return self._transform(name) is None
        running = self._transform(name)
        return running is not None and running.source == source

    def _version(self, name: str) -> str | None:
        running = self._transform(name)
        return None if running is None else running.version

    def _transform(self, name: str) -> Transform | None:
        assert self.service is not None, "the server was never started"
        return self.service.registry.current().get(name)


class _LogFile:
    """The service's log lines, as `serve` writes them as JSON, appended to a file while it
    runs: our loggers and uvicorn's, at info and above, with the service's secrets scrubbed.

    Logging is the process's: with several servers running here (instances sharing a
    database), each file gets every server's lines, and the loggers' levels are put back only
    when the last one closes."""

    LOGGERS = ("dodo_transform", "uvicorn.error")
    _open: ClassVar[list[_LogFile]] = []
    _levels: ClassVar[dict[str, int]] = {}

    def __init__(self, path: Path) -> None:
        self._file = path.open("a", encoding="utf-8")
        self._handler = logging.StreamHandler(self._file)
        self._handler.setFormatter(logs.JsonFormatter())
        if not _LogFile._open:
            _LogFile._levels = {name: logging.getLogger(name).level for name in self.LOGGERS}
        _LogFile._open.append(self)
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            if logger.getEffectiveLevel() > logging.INFO:
                logger.setLevel(logging.INFO)
            logger.addHandler(self._handler)

    def write(self, text: str) -> None:
        self._file.write(text + "\n")
        self._file.flush()

    def close(self) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeHandler(self._handler)
        _LogFile._open.remove(self)
        if not _LogFile._open:
            for name, level in _LogFile._levels.items():
                logging.getLogger(name).setLevel(level)
        self._handler.close()
        self._file.close()


# --- the whole service in this process --------------------------------------------------------


async def never_changes(registry: Registry, stop: asyncio.Event) -> AsyncIterator[object]:
    """A folder watcher that reports no change: tests reload the registry themselves."""
    await stop.wait()
    return
    yield  # an async generator that yields nothing


class InProcess:
    """A running in-process service (pipeline included) and an HTTP client on its app."""

    def __init__(self, service: Service, client: httpx.AsyncClient, folder: Path) -> None:
        self.service, self.client, self.folder = service, client, folder

    async def send_webhook(self, webhook_id: str, body: Mapping[str, Any]) -> None:
        """Sign `body` with `SECRET` as Dodo would and post it; it must be stored."""
        raw = json.dumps(body).encode()
        headers = signing.sign(SECRET, webhook_id, raw)
        answer = await self.client.post("/webhooks/dodo", content=raw, headers=headers)
        assert answer.status_code == 200, answer.text

    async def until(self, check: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
        """The first truthy value `check` gives, polling until `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = await check()
            if found:
                return found
            await asyncio.sleep(0.02)
        raise AssertionError("not reached in time")

    async def deliveries(self, status: str) -> list[dict[str, Any]]:
        answer = await self.client.get("/api/deliveries", params={"status": status})
        return list(answer.json())


@asynccontextmanager
async def in_process(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    base_url: str = "http://127.0.0.1:8000",
) -> AsyncIterator[tuple[Service, httpx.AsyncClient]]:
    """`build_service` with the pipeline in this process, started; destinations reached
    through `transport` (e.g. an `httpx.MockTransport`); an HTTP client on its app, from
    127.0.0.1 and at a loopback `Host`, as the CLI on the same machine calls it (without an
    admin token the admin API and the console answer nothing else)."""
    # The pipeline polls as often as the worker process does (retries come due by time).
    service = build_service(
        settings,
        transport=transport,
        watcher=never_changes,
        idle_poll_seconds=worker.POLL_SECONDS,
    )
    # The app's own start and stop, as its lifespan runs them (they include the console's).
    context = service.app.state.context
    await context.start()
    try:
        app = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=app, base_url=base_url) as client:
            yield service, client
    finally:
        await context.stop()


# --- `python -m dodo_transform.testing segment`: the stand-in, runnable ------------------------


def describe(request: Received) -> list[str]:
    """One line per message of a request the stand-in answered, as a person follows them:
    `200 track "Payment Completed" userId=cus_1 messageId=...` (never the write key)."""
    try:
        messages = request.messages
    except (ValueError, KeyError, TypeError):
        return [f"{request.status} {request.method} {request.path}: not Segment's JSON"]
    lines = []
    for message in messages:
        words = [str(request.status), str(message.get("type", request.path))]
        name = message.get("event") or message.get("name")
        if isinstance(name, str):
            words.append(json.dumps(name, ensure_ascii=False))
        words += [
            f"{key}={message[key]}"
            for key in ("userId", "anonymousId", "messageId")
            if key in message
        ]
        lines.append(" ".join(words))
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the Segment stand-in until Ctrl-C, printing each message it receives: point the
    service at it with SEGMENT_ENDPOINT and SEGMENT_WRITE_KEY to see what Segment would get."""
    import argparse  # only for this entry point

    parser = argparse.ArgumentParser(
        prog="python -m dodo_transform.testing",
        description="Test doubles of dodo-transform, runnable.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    standin = commands.add_parser(
        "segment", help="a local Segment that checks the write key and prints each message"
    )
    standin.add_argument("--port", type=int, default=9000, help="port on 127.0.0.1 [9000]")
    standin.add_argument("--write-key", default=WRITE_KEY, help="the write key it expects")
    standin.add_argument("--body", action="store_true", help="print each request's JSON too")
    options = parser.parse_args(argv)
    try:
        segment = SegmentStandIn(
            options.write_key, port=options.port, on_request=_printer(options.body)
        )
    except OSError as error:
        print(
            f"error: cannot listen on 127.0.0.1:{options.port}: {error.strerror}", file=sys.stderr
        )
        return 2
    with segment.running():
        print(
            f"Segment stand-in on {segment.url}: run the service with"
            f" SEGMENT_ENDPOINT={segment.url} and SEGMENT_WRITE_KEY set to the --write-key",
            flush=True,
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print(f"stopped; {len(segment.messages())} messages accepted", flush=True)
    return 0


def _printer(body: bool) -> Callable[[Received], None]:
    def show(request: Received) -> None:
        lines = describe(request)
        if request.status == 401:
            lines = ["401: wrong write key (Basic auth with the key given by --write-key)"]
        if body:
            lines.append(request.body.decode("utf-8", errors="replace"))
        print("\n".join(lines), flush=True)

    return show


if __name__ == "__main__":
    sys.exit(main())
