"""One instance among several on PostgreSQL: the settings it refuses, its role, and a pipeline
that starts on an event another instance stored at once (LISTEN/NOTIFY), not at its next poll."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from dodo_transform.cli import app as cli
from dodo_transform.errors import ConfigError
from dodo_transform.pipeline.handles import Elsewhere, InWorker
from dodo_transform.service import build_service
from dodo_transform.settings import Settings, load_settings
from dodo_transform.store import DeliveryStatus, Heartbeat, NewEvent, instance_id
from dodo_transform.store.postgres import PostgresStore
from tests.conftest import SHIPPED, sample, shipped_transforms
from tests.postgres import fresh_database

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WRITE_KEY = "wk_instances"


@pytest.fixture
def url() -> Iterator[str]:
    with fresh_database() as database:
        yield database


def settings_for(tmp_path: Path, url: str | None, **extra: Any) -> Settings:
    if not (tmp_path / "transforms").exists():
        shutil.copytree(SHIPPED, tmp_path / "transforms")
    options: dict[str, Any] = {
        "transforms": tmp_path / "transforms",
        "data_dir": tmp_path / "data",
        "webhook_secret": SECRET,
    }
    return load_settings(**(options | {"database_url": url} | extra))


def test_postgres_without_a_webhook_secret_is_refused_at_startup(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match="DODO_WEBHOOK_SECRET is not set"):
        build_service(settings_for(tmp_path, url, webhook_secret=None))
    assert not (tmp_path / "data" / "webhook-secret").exists()  # none made up either


@pytest.mark.parametrize("role", ["ingest", "worker"])
def test_a_partial_role_needs_a_shared_database(tmp_path: Path, role: str) -> None:
    with pytest.raises(ConfigError, match=f"DODO_TRANSFORM_ROLE={role} needs a database"):
        build_service(settings_for(tmp_path, None, role=role))


def test_serve_takes_the_database_url_and_the_role_as_flags(tmp_path: Path) -> None:
    folder = ["--transforms", str(shipped_transforms(tmp_path / "transforms"))]
    result = CliRunner().invoke(
        cli, ["serve", *folder, "--role", "ingest", "--data-dir", str(tmp_path), "--port", "0"]
    )
    assert result.exit_code == 2
    assert "DODO_TRANSFORM_ROLE=ingest needs a database the instances share" in result.output
    result = CliRunner().invoke(
        cli, ["serve", *folder, "--role", "boss", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 2 and "role" in result.output
    result = CliRunner().invoke(
        cli,
        ["serve", *folder, "--database-url", "postgresql://root@127.0.0.1:1/x", "--port", "0"],
        env={"DODO_WEBHOOK_SECRET": SECRET},
    )
    assert result.exit_code == 2 and "cannot open the store" in result.output


def test_an_ingest_instance_runs_no_pipeline_and_is_ready(tmp_path: Path, url: str) -> None:
    service = build_service(settings_for(tmp_path, url, role="ingest"))
    try:
        assert service.pipeline is None and isinstance(service.handle, Elsewhere)
        assert service.handle.problems() == []
    finally:
        service.store.close()


def test_a_worker_instance_answers_health_but_not_webhooks(tmp_path: Path, url: str) -> None:
    service = build_service(settings_for(tmp_path, url, role="worker"))
    assert isinstance(service.handle, InWorker)  # the pipeline, in its own supervised process

    async def statuses() -> list[int]:
        # The app is not started (no lifespan): what is checked is which routes it has.
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://relay") as client:
            return [
                (await client.get("/healthz")).status_code,
                (await client.post("/webhooks/dodo", content=b"{}")).status_code,
                (await client.get("/api/deliveries")).status_code,
            ]

    try:
        assert asyncio.run(statuses()) == [200, 404, 404]
    finally:
        if service.intake is not None:
            service.intake.close()
        service.store.close()


def test_a_pipeline_starts_on_an_event_stored_by_another_instance_at_once(
    tmp_path: Path, url: str
) -> None:
    sent: list[httpx.Request] = []

    def segment(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"success": True})

    settings = settings_for(tmp_path, url, segment_write_key=WRITE_KEY, segment_batch_size=1)
    # A poll every 30 s: only the notification can make this quick.
    worker = build_service(
        settings, in_worker=True, transport=httpx.MockTransport(segment), idle_poll_seconds=30
    )
    other = PostgresStore(url, owner="another-instance")
    body = json.dumps(sample("payment.succeeded")).encode()

    async def run() -> float:
        await worker.start()
        try:
            await asyncio.sleep(1.0)  # settled: the first polls are done
            started = time.monotonic()
            other.add_events([NewEvent("msg_elsewhere", "payment.succeeded", body)])
            while not any(d.status is DeliveryStatus.DELIVERED for d in other.list_deliveries()):
                assert time.monotonic() - started < 10, other.list_deliveries()
                await asyncio.sleep(0.02)
            return time.monotonic() - started
        finally:
            await worker.stop()

    try:
        took = asyncio.run(run())
    finally:
        other.close()
    assert took < 3.0
    assert sent and all(request.url.path == "/v1/batch" for request in sent)


def test_pipelines_on_several_instances_share_the_destination_rate(
    tmp_path: Path, url: str
) -> None:
    settings = settings_for(tmp_path, url, lease_seconds=0.6, segment_requests_per_second=50)
    worker = build_service(settings, in_worker=True)
    assert worker.pipeline is not None and worker.pipeline.limiter is not None
    limiter = worker.pipeline.limiter
    other = PostgresStore(url, owner="another-instance")

    async def rates() -> list[float]:
        await worker.start()
        seen = []
        try:
            for other_alive in (True, False):
                deadline = time.monotonic() + 10
                want = 25.0 if other_alive else 50.0
                while limiter.rate != want and time.monotonic() < deadline:
                    if other_alive:
                        other.renew(5)
                    await asyncio.sleep(0.05)
                seen.append(limiter.rate)
        finally:
            await worker.stop()
        return seen

    try:
        assert asyncio.run(rates()) == [25.0, 50.0]
    finally:
        other.close()


# --- which instances are live, and whether they run the same transforms --------------------------


def test_status_lists_the_live_instances_and_a_transform_they_run_at_different_versions(
    tmp_path: Path, url: str
) -> None:
    """Two instances, each with its own copy of the folder (two hosts), one copy edited: both
    are listed with host, role, release and heartbeat, and the difference is named; an instance
    that stops leaves the list at once."""
    from dodo_transform import __version__
    from dodo_transform.testing import in_process

    first = settings_for(tmp_path / "a", url)
    second = settings_for(tmp_path / "b", url, role="ingest")
    edited = tmp_path / "b" / "transforms" / "segment_track_payments.js"
    edited.write_text(edited.read_text().replace("Payment Completed", "Payment Done"))

    async def scenario() -> None:
        async with in_process(first) as (one, client):
            async with in_process(second) as (two, _):
                status = (await client.get("/api/status")).json()
                overview = await client.get("/", headers={"Accept": "text/html"})
            after = (await client.get("/api/status")).json()
        live = {i["instance"]: i for i in status["instances"]}
        ids = [f"{instance_id(s)}" for s in (first, second)]
        assert sorted(live) == sorted(ids)
        assert live[ids[1]]["role"] == "ingest" and live[ids[0]]["role"] == "all"
        assert {i["release"] for i in live.values()} == {__version__}
        assert all(time.time() - i["last_heartbeat"] < 10 for i in live.values())
        (difference,) = status["version_differences"]
        assert difference["transform"] == "segment_track_payments"
        versions = {
            s.registry.current()["segment_track_payments"].version: [instance_id(s.settings)]
            for s in (one, two)
        }
        assert difference["versions"] == dict(sorted(versions.items()))
        assert difference["message"].startswith(
            "transform segment_track_payments differs between instances: "
        )
        assert 'data-testid="version-differences"' in overview.text
        assert overview.text.count('data-testid="instance-row"') == 2
        assert [i["instance"] for i in after["instances"]] == [ids[0]]
        assert after["version_differences"] == []

    asyncio.run(scenario())


def test_status_on_the_command_line_shows_instances_and_differences(
    tmp_path: Path, url: str
) -> None:
    from dodo_transform.testing import InProcessServer

    (tmp_path / "a").mkdir()
    shutil.copytree(SHIPPED, tmp_path / "a" / "transforms")
    with InProcessServer(tmp_path / "a", database_url=url, webhook_secret=SECRET) as server:
        service = server.service
        assert service is not None
        # A second instance as another host would record it: its heartbeat in the store.
        other = {name: "0123456789ab" for name in service.registry.current()}
        service.store.beat(Heartbeat("host-b:/var/lib/dodo", "host-b", "worker", "0.0.1", other))
        result = CliRunner().invoke(cli, ["status", "--server", server.url], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "instances: 2 live" in result.output
    assert re.search(r"host-b\s+│ worker\s+│ 0\.0\.1\s+│ \d+ s ago", result.output), result.output
    differences = [line for line in result.output.splitlines() if line.startswith("WARNING:")]
    assert len(differences) == len(other)
    assert "0123456789ab on host-b:/var/lib/dodo" in differences[0]


def test_differences_name_a_transform_an_instance_has_not_loaded() -> None:
    from dodo_transform.instances import differences

    beats = [
        Heartbeat("a", "a", "all", "1", {"t": "v1", "u": "v5"}),
        Heartbeat("b", "b", "all", "1", {"t": "v1"}),
    ]
    (only,) = differences(beats)
    assert only.transform == "u" and only.versions == {"none": ["b"], "v5": ["a"]}
    assert differences(beats[:1]) == []
