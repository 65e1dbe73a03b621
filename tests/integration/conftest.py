"""Integration fixtures: the real server process on a free port, and a Segment stand-in."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dodo_transform import signing
from tests.conftest import EXAMPLES, ROOT, TRANSFORMS
from tests.standin import SegmentStandIn

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WRITE_KEY = "wk_integration_Secret123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`dodo-transform serve` in its own process, restartable and killable."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / "server.log"
        self.ready_path = "/readyz"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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

    def start(self, timeout: float = 20.0) -> Server:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), cwd=self.workdir, env=self.env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}{self.ready_path}", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def post(
        self,
        body: bytes | dict[str, Any],
        *,
        webhook_id: str | None = None,
        headers: dict[str, str] | None = None,
        secret: str = SECRET,
        timestamp: int | None = None,
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        signed = signing.sign(secret, webhook_id or f"msg_{uuid.uuid4().hex}", raw, timestamp)
        return httpx.post(
            f"{self.url}/webhooks/dodo",
            content=raw,
            headers={"Content-Type": "application/json", **signed, **(headers or {})},
            timeout=15,
        )

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.url}{path}", timeout=30, **kwargs)

    def wait_until(self, predicate: Any, timeout: float = 15.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            time.sleep(0.1)
        raise AssertionError(
            f"timed out waiting for {what}; log tail: {self.log.read_text()[-2000:]}"
        )

    def deliveries(self, status: str | None = None) -> list[dict[str, Any]]:
        params = {"limit": 1000} | ({"status": status} if status else {})
        answer: list[dict[str, Any]] = self.api("GET", "/api/deliveries", params=params).json()
        return answer


@pytest.fixture
def standin() -> Iterator[SegmentStandIn]:
    with SegmentStandIn(WRITE_KEY).running() as server:
        yield server


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(TRANSFORMS, tmp_path / "transforms")
    return tmp_path


def server_env(standin: SegmentStandIn, **extra: str) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("DODO_", "SEGMENT_"))
    }
    env |= {
        "DODO_WEBHOOK_SECRET": SECRET,
        "SEGMENT_WRITE_KEY": WRITE_KEY,
        "SEGMENT_ENDPOINT": standin.url,
        "DODO_TRANSFORM_RETRY_BASE_SECONDS": "0.1",
        "PYTHONPATH": str(ROOT),
    }
    return env | extra


@pytest.fixture
def server(workdir: Path, standin: SegmentStandIn) -> Iterator[Server]:
    running = Server(workdir, server_env(standin)).start()
    yield running
    running.stop()


def example(event_type: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((EXAMPLES / "events" / f"{event_type}.json").read_text())
    return body
