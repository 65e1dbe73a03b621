"""PostgreSQL stopped under load and started again: ingest answers 503 with Retry-After while it
is away, /readyz says why, and everything resumes by itself; nothing acknowledged is lost."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from dodo_transform.testing import Reply, SegmentStandIn, wait_until
from tests.integration.test_instances import (
    Burst,
    body_for,
    one_message_id_each,
    start_instances,
    tracked_users,
)
from tests.postgres import ThrowawayServer, shared_server_untouched, throwaway_server

pytestmark = pytest.mark.reliability


@pytest.fixture
def postgres() -> Iterator[ThrowawayServer]:
    """A PostgreSQL server of this test's own, the one it stops; the machine's is never
    stopped, and must have the same start time afterwards."""
    with shared_server_untouched(), throwaway_server() as server:
        yield server


def test_a_postgresql_outage_under_load_loses_nothing_and_heals_by_itself(
    tmp_path: Path, standin: SegmentStandIn, postgres: ThrowawayServer
) -> None:
    standin.default = Reply(200, delay=0.1)
    servers = start_instances(tmp_path, standin, postgres.url, ["all", "all"])
    burst = Burst(servers, 200)
    try:
        with ThreadPoolExecutor(1) as background:
            sending = background.submit(burst.run, 4)
            servers[0].wait_until(lambda: len(burst.acknowledged) >= 50, 60, "the burst")
            postgres.stop()
            refused = servers[0].post(body_for("msg_while_down"))
            ready = httpx.get(f"{servers[1].url}/readyz", timeout=30)
            postgres.start()
            sending.result(timeout=120)
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        assert ready.status_code == 503
        assert any("store" in problem for problem in ready.json()["problems"]), ready.json()
        wait_until(
            lambda: all(
                httpx.get(f"{s.url}/readyz", timeout=10).status_code == 200 for s in servers
            ),
            30,
            "both instances to be ready again",
        )
        wanted = {webhook_id.replace("msg", "cus", 1) for webhook_id in burst.acknowledged}
        assert len(wanted) == 200
        with contextlib.suppress(AssertionError):  # the assertion below says what is missing
            servers[0].wait_until(lambda: wanted <= tracked_users(standin), timeout=90)
        missing = wanted - tracked_users(standin)
        assert not missing, f"{len(missing)} acknowledged events never delivered"
        assert one_message_id_each(standin) == {}
    finally:
        for server in servers:
            server.stop()
