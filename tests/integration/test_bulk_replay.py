"""Bulk replays through the real server: counted first, run by the worker at its pace,
cancelled half way with the rest left alone, and `--original` resending the stored bodies."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dodo_transform.testing import (
    Answer,
    DestinationStandIn,
    InProcessServer,
    Received,
    SegmentStandIn,
    server_settings,
)
from tests.command_line import run
from tests.conftest import sample

FORWARD = """
function handler(webhook) {
  webhook.payload = { payment_id: webhook.payload.data.payment_id, note: "héllo" };
  return webhook;
}
"""


class Refusing:
    """A destination that refuses every message (400: dead at once) until `accept()`."""

    def __init__(self) -> None:
        self.accepting = threading.Event()

    def accept(self) -> None:
        self.accepting.set()

    def __call__(self, request: Received) -> Answer:
        return Answer(200) if self.accepting.is_set() else Answer(400, body=b"no")


@contextmanager
def forwarding(
    workdir: Path, standin: SegmentStandIn, **settings: Any
) -> Iterator[tuple[InProcessServer, DestinationStandIn, Refusing]]:
    """A server whose one transform forwards each payment to a destination that refuses."""
    refusing = Refusing()
    with DestinationStandIn(refusing).running() as destination:
        folder = workdir / "forwarding"
        (folder / "transforms").mkdir(parents=True)
        (folder / "transforms" / "forward.js").write_text(FORWARD)
        (folder / "transforms" / "transforms.toml").write_text(
            f'[forward]\nurl = "{destination.url}/hook"\n'
        )
        with InProcessServer(folder, **server_settings(standin, **settings)) as server:
            yield server, destination, refusing


def post_payments(server: InProcessServer, count: int) -> None:
    def post(n: int) -> None:
        body = sample("payment.succeeded")
        body["data"]["payment_id"] = f"pay_{n:05d}"
        body["data"]["customer"]["email"] = f"buyer{n % 7}@example.com"
        assert server.post(body, webhook_id=f"msg_{n:05d}").status_code == 200

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(post, range(count)))


def counts(server: InProcessServer) -> dict[str, int]:
    answer: dict[str, int] = server.api("GET", "/api/status").json()["deliveries"]
    return answer


def dead_after(server: InProcessServer, count: int) -> None:
    post_payments(server, count)
    server.wait_until(
        lambda: counts(server).get("dead") == count, timeout=120, what=f"{count} dead"
    )


def test_a_bulk_replay_is_counted_progresses_and_is_cancelled_half_way(
    workdir: Path, standin: SegmentStandIn
) -> None:
    with forwarding(workdir, standin, bulk_replay_per_second=40.0) as (server, _, refusing):
        dead_after(server, 200)
        refusing.accept()
        preview = server.api("POST", "/api/replays", params={"status": "dead", "dry_run": True})
        assert preview.status_code == 200 and preview.json()["count"] == 200
        assert counts(server)["dead"] == 200  # a dry run changes nothing
        started = server.api("POST", "/api/replays", params={"status": "dead"})
        assert started.status_code == 201, started.text
        bulk = started.json()
        assert (bulk["total"], bulk["state"]) == (200, "running")
        path = f"/api/replays/{bulk['id']}"
        server.wait_until(lambda: server.api("GET", path).json()["done"] >= 60, timeout=30)
        cancelled = server.api("POST", f"{path}/cancel").json()
        assert cancelled["state"] == "cancelled" and 60 <= cancelled["done"] < 200
        again = server.api("POST", f"{path}/cancel")
        assert again.status_code == 409 and "has ended already" in again.text
        server.wait_idle()
        final = server.api("GET", path).json()
        after = counts(server)
        # What it took was replayed (and delivered, the destination accepting now); the rest
        # is still dead, untouched.
        assert after["replayed"] == final["done"] == final["replayed"]
        assert after["dead"] == 200 - final["done"]
        assert after["delivered"] == final["done"]


def test_original_resends_the_stored_bodies_byte_equal(
    workdir: Path, standin: SegmentStandIn
) -> None:
    with forwarding(workdir, standin, bulk_replay_per_second=100.0) as (
        server,
        destination,
        refusing,
    ):
        dead_after(server, 3)
        first = {r.json["payment_id"]: r.body for r in destination.requests()}
        refusing.accept()
        preview = run("replay", "--dead", "--original", "--dry-run", "--server", server.url)
        assert preview.returncode == 0, preview.stderr
        assert "3 deliveries would be replayed" in preview.stdout
        assert "nothing was changed" in preview.stdout and "msg_0000" in preview.stdout
        assert counts(server)["dead"] == 3
        started = run("replay", "--dead", "--original", "--json", "--server", server.url)
        assert started.returncode == 0, started.stderr
        assert json.loads(started.stdout)["mode"] == "original"
        requests = destination.wait_for(6)
        again = {r.json["payment_id"]: r.body for r in requests[3:]}
        assert again == first  # byte for byte, "héllo" and all
        server.wait_idle()
        listed = run("replays", "--server", server.url)
        assert listed.returncode == 0 and "original" in listed.stdout and "3/3" in listed.stdout


def test_the_cli_refuses_what_cannot_be_replayed_in_one_line(
    workdir: Path, standin: SegmentStandIn
) -> None:
    with forwarding(workdir, standin) as (server, _, _refusing):
        delivered = run("replay", "--status", "delivered", "--server", server.url)
        assert delivered.returncode == 1
        assert "status delivered: only failed, dead" in delivered.stderr
        unknown = run("replay", "--cancel", "99", "--server", server.url)
        assert unknown.returncode == 1 and "no bulk replay 99" in unknown.stderr
        alone = run("replay", "--cancel", "1", "--dead", "--server", server.url)
        assert alone.returncode == 2 and "give it alone" in alone.stderr
        nothing = run("replay", "--server", server.url)
        assert nothing.returncode == 2 and "give a delivery id, or filters" in nothing.stderr
        none = run("replay", "--dead", "--since", "2000-01-01", "--server", server.url)
        assert none.returncode == 0 and "no deliveries to replay match" in none.stdout
        listed = run("replays", "--json", "--server", server.url)
        (bulk,) = json.loads(listed.stdout)
        assert (bulk["total"], bulk["filters"]["status"]) == (0, "dead")
        table = run("replays", "--server", server.url, env={"COLUMNS": "200"})
        assert "status=dead since=2000-01-01T00:00:00Z" in table.stdout
