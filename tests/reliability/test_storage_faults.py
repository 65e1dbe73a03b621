"""Storage faults: when the store cannot be written, or what it writes would not be found after a
restart, the webhook endpoint answers 503 (Dodo will retry) and never 2xx, and `/readyz` says so;
the service recovers by itself once the store is writable again."""

from __future__ import annotations

import copy
import subprocess
import threading
import time
from pathlib import Path

import pytest

from dodo_transform.testing import (
    InProcessServer,
    SegmentStandIn,
    Served,
    Server,
    server_env,
    server_settings,
)
from tests.integration.conftest import example

pytestmark = pytest.mark.reliability


def limit_file_size(pid: int, size: str) -> None:
    """Cap the size of any file the process writes (the soft RLIMIT_FSIZE): the disk is 'full'."""
    subprocess.run(["prlimit", f"--pid={pid}", f"--fsize={size}:"], check=True)


def padded(n: int) -> dict[str, object]:
    body = copy.deepcopy(example("payment.succeeded"))
    body["data"]["customer"]["customer_id"] = f"cus_full_{n}"
    body["data"]["padding"] = "p" * 8000
    return body


def test_a_full_disk_answers_503_and_recovers(workdir: Path, standin: SegmentStandIn) -> None:
    """A process of its own: the file size limit that plays a full disk is a process's."""
    server = Server(workdir, server_env(standin)).start()
    assert server.process is not None
    try:
        data = workdir / "data"
        used = max(path.stat().st_size for path in data.iterdir() if path.is_file())
        limit_file_size(server.process.pid, str(used + 64 * 1024))
        answers = []
        for n in range(200):
            answers.append(server.post(padded(n), webhook_id=f"msg_full_{n}").status_code)
            if answers[-1] == 503:
                break
        assert answers[-1] == 503, "the store never filled up"
        assert set(answers) <= {200, 503}
        refused = len(answers) - 1
        response = server.post(padded(999), webhook_id="msg_while_full")
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        assert server.process.poll() is None
        ready = server.api("GET", "/readyz")
        assert ready.status_code == 503
        assert any("the disk may be full" in problem for problem in ready.json()["problems"])

        limit_file_size(server.process.pid, "unlimited")
        recovered = server.wait_until(
            lambda: (
                server.post(example("payment.succeeded"), webhook_id="msg_after").status_code == 200
            ),
            what="ingest to recover",
        )
        assert recovered
        stored = {
            e["webhook_id"] for e in server.api("GET", "/api/events", params={"limit": 1000}).json()
        }
        acknowledged = {f"msg_full_{n}" for n in range(refused)} | {"msg_after"}
        assert acknowledged <= stored
        assert "msg_while_full" not in stored
        server.wait_until(lambda: server.api("GET", "/readyz").status_code == 200, what="ready")
    finally:
        server.stop()


class Poster:
    """Posts webhooks one after another from a thread, noting when each was sent and how it
    was answered, as Dodo would during the fault."""

    def __init__(self, server: Served) -> None:
        self.server = server
        self.sent: list[tuple[str, float, int]] = []  # webhook-id, sent at, status
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            webhook_id, at = f"msg_during_{n}", time.monotonic()
            try:
                status = self.server.post(example("payment.succeeded"), webhook_id=webhook_id)
                self.sent.append((webhook_id, at, status.status_code))
            except OSError:
                self.sent.append((webhook_id, at, 0))
            n += 1

    def __enter__(self) -> Poster:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(30)


def test_a_deleted_database_turns_ingest_and_readiness_to_503_and_loses_nothing(
    workdir: Path, standin: SegmentStandIn
) -> None:
    """SQLite goes on committing into a deleted file (its descriptor still works), which no
    restart finds again: the service notices before it answers."""
    server = InProcessServer(workdir, **server_settings(standin)).start()
    try:
        assert server.post(example("payment.succeeded"), webhook_id="msg_before").status_code == 200
        with Poster(server) as poster:
            time.sleep(0.3)
            for name in ("dodo-transform.db", "dodo-transform.db-wal", "dodo-transform.db-shm"):
                (workdir / "data" / name).unlink()
            deleted = time.monotonic()
            server.wait_until(
                lambda: server.api("GET", "/readyz").status_code == 503, 5, "/readyz to say 503"
            )
            time.sleep(0.3)
        problems = server.api("GET", "/readyz").json()["problems"]
        # Removed, or replaced if a process (a restarted worker) has made a new file there since.
        said = ("dodo-transform.db was removed", "dodo-transform.db was replaced")
        assert any(s in problem for problem in problems for s in said), problems
        refused = server.post(example("payment.succeeded"), webhook_id="msg_after")
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        assert server.api("GET", "/healthz").status_code == 200  # still serving
    finally:
        server.stop()
    # Every webhook sent once the files were gone was refused: none was acknowledged into them.
    after = [(webhook_id, status) for webhook_id, at, status in poster.sent if at > deleted]
    assert after and all(status == 503 for _, status in after), after

    server.start()  # a new, empty store: what the deleted one held is gone with it
    try:
        retried = [webhook_id for webhook_id, _ in after] + ["msg_after"]
        for webhook_id in retried:  # Dodo retries every one answered 503
            assert server.post(example("payment.succeeded"), webhook_id=webhook_id).is_success
        events = server.api("GET", "/api/events", params={"limit": 1000}).json()
        assert set(retried) <= {event["webhook_id"] for event in events}
    finally:
        server.stop()
