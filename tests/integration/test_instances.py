"""Instances on one PostgreSQL database form one service: any instance takes any webhook, an
instance killed mid-burst loses nothing that was acknowledged, every message keeps one
messageId, and a webhook-id is one event whichever instance took it.

Where an instance is killed or stopped, the instances are `dodo-transform serve` processes;
elsewhere they run in this process, each a whole service of its own."""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import signal
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from dodo_transform.testing import (
    Answer,
    DestinationStandIn,
    InProcessServer,
    Received,
    Reply,
    SegmentStandIn,
    Served,
    Server,
    descendants,
    server_env,
    server_settings,
)
from tests.conftest import SHIPPED, shipped_transforms
from tests.integration.conftest import example
from tests.postgres import fresh_database

pytestmark = pytest.mark.integration


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def start_instances(
    tmp_path: Path, standin: SegmentStandIn, url: str, roles: list[str], **extra: str
) -> list[Server]:
    """One server per role, each with its own port, data dir and copy of the transforms,
    all started at the same moment (so they also migrate the new database together); `extra`
    is more of their environment."""
    env = server_env(standin, DODO_TRANSFORM_DATABASE_URL=url, **extra)
    servers = []
    for n, role in enumerate(roles):
        workdir = tmp_path / f"instance-{n}"
        shutil.copytree(SHIPPED, workdir / "transforms")
        servers.append(Server(workdir, env | {"DODO_TRANSFORM_ROLE": role}))
    if "worker" in roles:
        for server in servers:
            server.ready_path = "/healthz"  # a worker-only or ingest-only instance is ready
    with ThreadPoolExecutor(len(servers)) as pool:
        list(pool.map(lambda server: server.start(timeout=60), servers))
    return servers


@contextlib.contextmanager
def instances_here(
    tmp_path: Path, standin: SegmentStandIn, url: str, roles: list[str]
) -> Iterator[list[InProcessServer]]:
    """One service per role in this process, each with its own port, data dir and copy of the
    transforms, sharing the database at `url`."""
    with contextlib.ExitStack() as running:
        yield [
            running.enter_context(
                InProcessServer(
                    shipped_transforms(tmp_path / f"instance-{n}" / "transforms").parent,
                    **server_settings(standin, database_url=url, role=role),
                )
            )
            for n, role in enumerate(roles)
        ]


def body_for(webhook_id: str) -> dict[str, Any]:
    """A payment whose customer id names the webhook, so each message says where it came from."""
    body = copy.deepcopy(example("payment.succeeded"))
    body["data"]["customer"]["customer_id"] = webhook_id.replace("msg", "cus", 1)
    return body


class Burst:
    """Posts signed events from several threads, each to the next instance in turn; a refused
    connection sends it on to the next one, as a load balancer would (and Dodo retries).
    `stop` ends it early: a test that ends (a failure, Ctrl-C) leaves nothing posting."""

    def __init__(self, servers: list[Server], count: int) -> None:
        self.servers = servers
        self.pending = [f"msg_{n:04d}_{uuid.uuid4().hex[:6]}" for n in range(count)]
        self.acknowledged: dict[str, int] = {}  # webhook-id -> the instance that answered 2xx
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._turn = 0

    def stop(self) -> None:
        self.stopped.set()

    def run(self, threads: int = 6) -> None:
        with ThreadPoolExecutor(threads) as pool:
            for done in [pool.submit(self._work) for _ in range(threads)]:
                done.result()  # a sender's failure fails the test

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self.pending or self.stopped.is_set():
                    return
                webhook_id = self.pending.pop()
                self._turn += 1
                instance = self._turn % len(self.servers)
            self._deliver(webhook_id, instance)

    def _deliver(self, webhook_id: str, instance: int) -> None:
        for attempt in range(100):
            if self.stopped.is_set():
                return
            server = self.servers[(instance + attempt) % len(self.servers)]
            try:
                response = server.post(body_for(webhook_id), webhook_id=webhook_id)
            except httpx.HTTPError:
                continue  # that instance is down: the next one
            if response.status_code == 200:
                with self._lock:
                    self.acknowledged[webhook_id] = self.servers.index(server)
                return
            assert response.status_code == 503, response.text
            self.stopped.wait(0.1)
        raise AssertionError(f"{webhook_id} was never acknowledged")


def kill_instance(server: Server) -> None:
    """SIGKILL the instance's worker and its HTTP process at once, as a power loss would."""
    worker = server.worker_pid()
    if worker is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGKILL)
    server.kill()


def work_held_by(url: str, server: Server) -> int:
    """Unfinished events and deliveries that `server`'s instance holds a lease on."""
    owner = f"%:{(server.workdir / 'data').resolve()}"
    with psycopg.connect(url) as db:
        row = db.execute(
            "SELECT (SELECT COUNT(*) FROM events WHERE lease_owner LIKE %s AND state = 'pending')"
            " + (SELECT COUNT(*) FROM deliveries WHERE lease_owner LIKE %s"
            " AND status = 'pending')",
            (owner, owner),
        ).fetchone()
    return int(row[0]) if row else 0


def tracked_users(standin: SegmentStandIn) -> set[str]:
    return {m["userId"] for m in standin.messages() if m["type"] == "track"}


def one_message_id_each(standin: SegmentStandIn) -> dict[tuple[str, str], set[str]]:
    """Messages with more than one messageId for the same (type, user): should be none."""
    ids: dict[tuple[str, str], set[str]] = defaultdict(set)
    for message in standin.messages():
        ids[(message["type"], message["userId"])].add(message["messageId"])
    return {key: found for key, found in ids.items() if len(found) > 1}


def test_an_instance_killed_mid_burst_and_left_down_loses_no_acknowledged_event(
    tmp_path: Path, standin: SegmentStandIn, database: str
) -> None:
    standin.default = Reply(200, delay=0.2)  # deliveries are in flight when the kill comes
    # Leases of 5 s rather than 15: the others take the dead one's work over when they run out.
    servers = start_instances(
        tmp_path, standin, database, ["all", "all", "all"], DODO_TRANSFORM_LEASE_SECONDS="5"
    )
    # Ready answers before the worker process has started: the burst waits for every worker,
    # or the ones up first take all of it (an instance delivers what it transformed).
    for server in servers:
        server.wait_until(lambda s=server: '"worker started"' in s.log_tail(10**7), 60, "worker")
    burst = Burst(servers, 240)
    try:
        with ThreadPoolExecutor(1) as background:
            sending = background.submit(burst.run)
            try:
                # Killed mid-burst while it holds work (claimed events or deliveries in
                # flight), so the others must take that over when its leases run out.
                servers[1].wait_until(
                    lambda: len(burst.acknowledged) >= 60 and work_held_by(database, servers[1]),
                    60,
                    "instance 1 to hold work mid-burst",
                )
                kill_instance(servers[1])
                sending.result(timeout=90)
            finally:
                burst.stop()  # before the executor waits for it, however this ends
        assert len(burst.acknowledged) == 240
        answered_by = {n: list(burst.acknowledged.values()).count(n) for n in range(3)}
        assert all(answered_by.values()), answered_by  # the load was spread
        standin.default = Reply(200)
        wanted = {webhook_id.replace("msg", "cus", 1) for webhook_id in burst.acknowledged}
        with contextlib.suppress(AssertionError):  # the assertion below says what is missing
            servers[0].wait_until(lambda: wanted <= tracked_users(standin), timeout=90)
        missing = wanted - tracked_users(standin)
        assert not missing, f"{len(missing)} acknowledged events never delivered"
        assert tracked_users(standin) == wanted
        assert work_held_by(database, servers[1]) == 0  # all of it taken over
        assert one_message_id_each(standin) == {}, "a resend got a new messageId"
        # Any live instance shows all of it.
        shown = servers[2].api("GET", "/api/events", params={"limit": 1000}).json()
        assert {event["webhook_id"] for event in shown} == set(burst.acknowledged)
    finally:
        for server in servers:
            server.stop()


def test_a_webhook_id_taken_by_one_instance_is_a_duplicate_at_another(
    tmp_path: Path, standin: SegmentStandIn, database: str
) -> None:
    with instances_here(tmp_path, standin, database, ["all", "all", "all"]) as servers:
        for n in range(10):
            webhook_id = f"msg_twice_{n}_{uuid.uuid4().hex[:6]}"
            start = threading.Barrier(2)

            def post(server: Served, webhook_id: str = webhook_id, start: Any = start) -> int:
                start.wait()
                return server.post(body_for(webhook_id), webhook_id=webhook_id).status_code

            with ThreadPoolExecutor(2) as pool:
                assert list(pool.map(post, servers[:2])) == [200, 200]
        for server in servers:
            server.wait_idle()
        events = servers[2].api("GET", "/api/events", params={"limit": 1000}).json()
        assert len(events) == 10
        tracks = [m for m in standin.messages() if m["type"] == "track"]
        assert len({m["messageId"] for m in tracks}) == 10
        assert len(tracks) == 10  # transformed once, delivered once


def test_ingest_and_worker_instances_split_the_work(
    tmp_path: Path, standin: SegmentStandIn, database: str
) -> None:
    with instances_here(tmp_path, standin, database, ["ingest", "worker"]) as (ingest, worker):
        assert worker.api("GET", "/readyz").status_code == 200
        assert worker.post(body_for("msg_misdirected")).status_code == 404
        ids = [f"msg_split_{n}" for n in range(5)]
        for webhook_id in ids:
            assert ingest.post(body_for(webhook_id), webhook_id=webhook_id).status_code == 200
        wanted = {webhook_id.replace("msg", "cus", 1) for webhook_id in ids}
        ingest.wait_until(lambda: wanted <= tracked_users(standin), 30, "the worker to deliver")
        assert ingest.service is not None and worker.service is not None
        assert ingest.service.pipeline is None  # nothing runs transforms on the ingest instance
        assert worker.service.pipeline is not None
        assert ingest.api("GET", "/readyz").status_code == 200


def holder_of(url: str, servers: list[Server]) -> Server | None:
    """The instance holding the lease on the one delivery, if any does."""
    with psycopg.connect(url) as db:
        row = db.execute(
            "SELECT lease_owner FROM deliveries WHERE lease_owner IS NOT NULL"
        ).fetchone()
    if row is None:
        return None
    return next(s for s in servers if str(row[0]).endswith(str((s.workdir / "data").resolve())))


def signal_instance(server: Server, signum: signal.Signals) -> None:
    """Send `signum` to every process of the instance (HTTP, worker, sandboxes)."""
    assert server.process is not None
    for pid in [server.process.pid, *descendants(server.process.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def test_an_instance_paused_past_its_lease_cannot_overwrite_a_newer_result(
    tmp_path: Path, database: str
) -> None:
    """SIGSTOP an instance while its request is out; another takes the delivery over and
    delivers it. Woken, the first reads its late 500: that result is dropped, not laid over
    `delivered`, and the message is not sent a third time."""
    answered: list[int] = []

    def first_fails_late(request: Received) -> Answer:
        answered.append(1)
        return Answer(500, delay=1.0, body=b"late failure") if len(answered) == 1 else Answer()

    with (
        DestinationStandIn(first_fails_late).running() as hook,
        SegmentStandIn().running() as segment,
    ):
        env = server_env(
            segment, DODO_TRANSFORM_DATABASE_URL=database, DODO_TRANSFORM_LEASE_SECONDS="3"
        )
        servers = []
        for n in range(2):
            folder = tmp_path / f"instance-{n}" / "transforms"
            folder.mkdir(parents=True)
            (folder / "alert.js").write_text("function handler(webhook) { return webhook; }")
            (folder / "transforms.toml").write_text(
                f'[alert]\nurl = "{hook.url}/hook"\nevents = ["payment.succeeded"]\n'
            )
            servers.append(Server(folder.parent, env))
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda server: server.start(timeout=60), servers))
        try:
            assert servers[0].post(example("payment.succeeded")).status_code == 200
            hook.wait_for(1)
            paused = servers[0].wait_until(lambda: holder_of(database, servers), 5, "a holder")
            other = servers[1 - servers.index(paused)]
            signal_instance(paused, signal.SIGSTOP)
            try:
                other.wait_until(
                    lambda: [d["status"] for d in other.deliveries_of("alert")] == ["delivered"],
                    8,
                    "the other instance to deliver",
                )
            finally:
                signal_instance(paused, signal.SIGCONT)
            paused.wait_until(
                lambda: "results dropped" in paused.log_tail(20_000), 10, "the stale result dropped"
            )
            time.sleep(2)  # a retry, were one scheduled, would come after 0.1 s
            (delivery,) = other.deliveries_of("alert")
            assert (delivery["status"], delivery["attempts"]) == ("delivered", 1)
            assert len(hook.requests()) == 2
        finally:
            for server in servers:
                server.stop()
