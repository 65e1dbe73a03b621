"""Crashes: SIGKILL while accepting, transforming and delivering loses nothing and doubles nothing
that Segment would count twice."""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from dodo_transform.testing import Reply, SegmentStandIn, Server, server_env
from tests.integration.conftest import example

pytestmark = pytest.mark.reliability

SLOW_TRANSFORM = """
function handler(webhook) {
  const end = Date.now() + 15;
  while (Date.now() < end) {}
  return webhook;
}
"""


class Sender:
    """Posts signed events from several threads, retrying each until it is answered 2xx,
    as Dodo does. Remembers which webhook-ids were acknowledged.

    It retries for as long as the test lets it: `stop` ends the retrying, as the test ends
    (however it ends: a failure, or Ctrl-C, must not leave threads retrying a server that is
    gone, and the interpreter waiting for them at exit)."""

    def __init__(self, server: Server, count: int) -> None:
        self.server = server
        self.pending = [f"msg_{n:04d}_{uuid.uuid4().hex[:6]}" for n in range(count)]
        self.acknowledged: set[str] = set()
        self.refused: set[str] = set()
        self.stopped = threading.Event()
        self._lock = threading.Lock()

    def stop(self) -> None:
        self.stopped.set()

    def body(self, webhook_id: str) -> dict[str, Any]:
        body = copy.deepcopy(example("payment.succeeded"))
        body["data"]["customer"]["customer_id"] = webhook_id.replace("msg", "cus", 1)
        return body

    def run(self, threads: int = 6) -> None:
        workers = [threading.Thread(target=self._work, daemon=True) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    def _work(self) -> None:
        while not self.stopped.is_set():
            with self._lock:
                if not self.pending:
                    return
                webhook_id = self.pending.pop()
            self._deliver(webhook_id)

    def _deliver(self, webhook_id: str) -> None:
        while not self.stopped.is_set():
            try:
                response = self.server.post(self.body(webhook_id), webhook_id=webhook_id)
            except httpx.HTTPError:
                self.stopped.wait(0.1)  # the server is down: retry, like Dodo
                continue
            if response.status_code == 200:
                with self._lock:
                    self.acknowledged.add(webhook_id)
                return
            if response.status_code == 503:
                self.stopped.wait(0.1)  # a sender's pause before retrying, like Dodo's
                continue
            raise AssertionError(f"unexpected {response.status_code}: {response.text}")


def test_sigkill_at_any_moment_loses_no_acknowledged_event(
    workdir: Path, standin: SegmentStandIn
) -> None:
    (workdir / "transforms" / "slow.js").write_text(SLOW_TRANSFORM)
    standin.default = Reply(200, delay=0.3)  # deliveries in flight when killed
    server = Server(workdir, server_env(standin)).start()
    sender = Sender(server, 300)
    sending = threading.Thread(target=sender.run, daemon=True)
    sending.start()
    forged = 0
    try:
        # The point is killing at arbitrary moments: accepting, then transforming a backlog,
        # then delivering. The moments are times, so a sleep is what picks them.
        for moment in (0.5, 1.5, 3.0):
            time.sleep(moment)
            bad = server.post(example("payment.succeeded"), secret="whsec_" + "QUJD" * 8)
            forged += bad.status_code == 401
            server.kill()
            time.sleep(0.2)  # down for a moment: the senders meet a refused connection
            server.start()
        sending.join(timeout=120)
        assert not sending.is_alive()
        assert len(sender.acknowledged) == 300
        standin.default = Reply(200)
        wanted = {webhook_id.replace("msg", "cus", 1) for webhook_id in sender.acknowledged}
        with contextlib.suppress(AssertionError):  # the assertion below says what is missing
            server.wait_until(
                lambda: wanted <= {m["userId"] for m in standin.messages() if m["type"] == "track"},
                timeout=120,
            )
        messages = standin.messages()
        tracked = {m["userId"] for m in messages if m["type"] == "track"}
        assert wanted <= tracked, f"{len(wanted - tracked)} acknowledged events never delivered"
        ids: dict[tuple[str, str], set[str]] = defaultdict(set)
        for message in messages:
            ids[(message["type"], message["userId"])].add(message["messageId"])
        assert all(len(message_ids) == 1 for message_ids in ids.values()), "a resend got a new id"
        assert forged == 3
        assert tracked == wanted  # nothing from the forged (401) requests
    finally:
        sender.stop()
        server.stop()


def test_a_killed_worker_process_is_restarted_and_loses_nothing(
    workdir: Path, standin: SegmentStandIn
) -> None:
    server = Server(workdir, server_env(standin)).start()
    try:
        worker = server.wait_until(server.worker_pid, what="the worker process")
        standin.default = Reply(503)
        for n in range(20):
            body = copy.deepcopy(example("payment.succeeded"))
            body["data"]["customer"]["customer_id"] = f"cus_w{n}"
            assert server.post(body, webhook_id=f"msg_w{n}").status_code == 200
        # Killed with deliveries made and failing: some are retrying when the worker dies.
        server.wait_until(lambda: standin.received, what="a first delivery attempt")
        os.kill(worker, signal.SIGKILL)
        server.wait_until(
            lambda: server.worker_pid() not in (None, worker), what="a new worker process"
        )
        standin.default = Reply(200)
        messages = standin.wait_for(40, timeout=60)
        assert {m["userId"] for m in messages} == {f"cus_w{n}" for n in range(20)}
        assert server.api("GET", "/readyz").status_code == 200
        assert "worker process died, restarting" in server.log.read_text()
    finally:
        server.stop()
