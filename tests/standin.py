"""A real local HTTP server standing in for Segment: records requests, checks Basic auth,
and fails on demand."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
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
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class SegmentStandIn:
    """Answers like Segment's API. `script` replies are used first, then `default`."""

    def __init__(self, write_key: str = "wk_test") -> None:
        self.write_key = write_key
        self.received: list[Received] = []
        self.script: list[Reply] = []
        self.default = Reply()
        self.reject_message: Callable[[dict[str, Any]], bool] = lambda message: False
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def accepted(self) -> list[Received]:
        """Requests that were answered 2xx."""
        with self._lock:
            return [r for r in self.received if r.status < 300]

    def messages(self) -> list[dict[str, Any]]:
        """Every message Segment accepted, in order."""
        return [message for request in self.accepted() for message in request.messages]

    def wait_for(self, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Wait until `count` messages were accepted; return them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages()) >= count:
                return self.messages()
            time.sleep(0.05)
        raise AssertionError(f"stand-in accepted {len(self.messages())} messages, wanted {count}")

    def _refuses(self, path: str, body: bytes) -> bool:
        try:
            messages = Received("POST", path, {}, body).messages
        except (ValueError, KeyError, TypeError):
            return True  # Segment answers 400 to bad JSON
        return any(self.reject_message(message) for message in messages)

    def _next_reply(self) -> Reply:
        with self._lock:
            return self.script.pop(0) if self.script else self.default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                reply = standin._next_reply()
                if reply.delay:
                    time.sleep(reply.delay)
                expected = "Basic " + base64.b64encode(f"{standin.write_key}:".encode()).decode()
                status = reply.status
                if status < 300 and self.headers.get("Authorization") != expected:
                    status = 401
                if status < 300 and standin._refuses(self.path, body):
                    status = 400
                record = Received(self.command, self.path, dict(self.headers), body, status)
                with standin._lock:
                    standin.received.append(record)
                payload = b'{"success": true}' if status < 300 else b'{"error": "stand-in says no"}'
                try:
                    self.send_response(status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (a timeout test)

            do_PUT = do_POST
            do_PATCH = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    @contextmanager
    def running(self) -> Iterator[SegmentStandIn]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
