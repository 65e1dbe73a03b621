"""PostgreSQL stopped under load and started again: ingest answers 503 with Retry-After while it
is away, /readyz says why, and everything resumes by itself; nothing acknowledged is lost."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

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
from tests.postgres import SERVER, fresh_database

pytestmark = pytest.mark.reliability


def cluster_command(action: str) -> list[str]:
    version = sorted(path.name for path in Path("/etc/postgresql").iterdir())[0]
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action]


@pytest.fixture
def local_cluster() -> Iterator[None]:
    """The machine's own PostgreSQL, which this test may stop (and always starts again)."""
    if urlsplit(SERVER).hostname not in ("127.0.0.1", "localhost") or not (
        shutil.which("pg_ctlcluster") and Path("/etc/postgresql").is_dir()
    ):
        pytest.skip("stopping PostgreSQL needs the machine's own cluster (pg_ctlcluster)")
    try:
        yield
    finally:
        subprocess.run(cluster_command("start"), check=False, capture_output=True)


@pytest.fixture
def database(local_cluster: None) -> Iterator[str]:
    with fresh_database() as url:
        yield url


def test_a_postgresql_outage_under_load_loses_nothing_and_heals_by_itself(
    tmp_path: Path, standin: SegmentStandIn, database: str
) -> None:
    standin.default = Reply(200, delay=0.1)
    servers = start_instances(tmp_path, standin, database, ["all", "all"])
    burst = Burst(servers, 200)
    try:
        with ThreadPoolExecutor(1) as background:
            sending = background.submit(burst.run, 4)
            servers[0].wait_until(lambda: len(burst.acknowledged) >= 50, 60, "the burst")
            subprocess.run([*cluster_command("stop"), "-m", "fast"], check=True)
            refused = servers[0].post(body_for("msg_while_down"))
            ready = httpx.get(f"{servers[1].url}/readyz", timeout=30)
            subprocess.run(cluster_command("start"), check=True)
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
