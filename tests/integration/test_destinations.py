"""Destinations as a user meets them: the real service, local stand-ins for Segment and for
other destinations that are slow, stall, fail until paused and probed or answer 100 MB.

Healthy Segment messages keep arriving within seconds whatever the others do; a failing
destination is paused, probed and resumed with its deliveries' attempts unspent (the breaker's
own timing, for a long outage, is tested with a clock in tests/test_delivery_stage.py); settings
changed in transforms.toml reach the next event; credentials go only to their destination
and no secret shows anywhere; one event's fan-out is capped, and fair to other transforms.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from dodo_transform import signing
from dodo_transform.settings import load_settings
from dodo_transform.testing import (
    SECRET,
    WRITE_KEY,
    Answer,
    DestinationStandIn,
    Received,
    SegmentStandIn,
    Server,
    in_process,
    process_memory,
    server_env,
)
from tests.conftest import sample

TRACK = """
function handler(webhook) {
  const data = webhook.payload.data;
  webhook.url = "https://api.segment.io/v1/track";
  webhook.payload = {
    userId: data.customer.customer_id,
    event: "Payment Completed",
    properties: { payment_id: data.payment_id, channel: webhook.env.CHANNEL || "" },
  };
  return webhook;
}
"""
# Where it goes is transforms.toml's `url`; what it says names the payment and `env`.
FORWARD = """
function handler(webhook) {
  webhook.payload = { payment_id: webhook.payload.data.payment_id, room: webhook.env.ROOM || "" };
  return webhook;
}
"""
# Payments posted after the failing destination recovers: Segment's pace is watched after too.
EVENTS_AFTER_OUTAGE = 3


class Outage:
    """A destination's answer: 500 until `end`, then 200. The test ends it once the destination
    has been paused (5 failures in a row) and a probe has met the outage: a fixed length would
    be too short on a slow machine and idle on a fast one."""

    def __init__(self) -> None:
        self.ended = threading.Event()

    def end(self) -> None:
        self.ended.set()

    def __call__(self, request: Received) -> Answer:
        return Answer(200) if self.ended.is_set() else Answer(500, body=b"upstream down")


def payment(n: int) -> dict[str, Any]:
    body = sample("payment.succeeded")
    body["data"]["payment_id"] = f"pay_{n:04d}"
    return body


@pytest.fixture
def stand_ins() -> Iterator[dict[str, DestinationStandIn]]:
    """The four bad destinations, running."""
    found = {
        "trickle": DestinationStandIn(Answer(200, trickle_seconds=2.0, body=b"ok" * 20)),
        "slow": DestinationStandIn(Answer(200, delay=12.0)),
        "outage": DestinationStandIn(Outage()),
        "flood": DestinationStandIn(Answer(400, body_bytes=100 * 1024 * 1024)),
    }
    with ExitStack() as running:
        for standin in found.values():
            running.enter_context(standin.running())
        yield found


@pytest.mark.integration
@pytest.mark.timeout(300)  # ~25 s; a lane's wait below may take longer while the cores are busy
def test_bad_destinations_never_hold_segment_back(
    tmp_path: Path, stand_ins: dict[str, DestinationStandIn]
) -> None:
    """Trickling, 12 s, 500 until paused and probed, 100 MB: Segment's messages arrive within
    seconds all along; the failing one is paused, probed and resumed with nothing dead; the
    worker's memory stays flat while 100 MB answers come (so this runs `serve`, and reads its
    worker process)."""
    folder = tmp_path / "transforms"
    folder.mkdir()
    (folder / "track.js").write_text(TRACK)
    table = ""
    for name, standin in stand_ins.items():
        (folder / f"{name}.js").write_text(FORWARD)
        table += f'[{name}]\nurl = "{standin.url}/hook/{name}"\n'
    (folder / "transforms.toml").write_text(table)
    with SegmentStandIn(WRITE_KEY).running() as segment:
        server = Server(tmp_path, server_env(segment)).start()
        try:
            posted, paused_seen, memory = exercise(server, segment, stand_ins)
        finally:
            server.stop()
    received = {m["properties"]["payment_id"]: m for m in segment.messages()}
    latencies = [at - posted[pid] for pid, at in arrival_times(segment).items()]
    assert sorted(received) == sorted(posted)
    assert max(latencies) < 5.0, f"median {statistics.median(latencies):.2f} s"
    assert paused_seen, "the failing destination was never shown paused"
    settled = memory[3:]  # once the worker has loaded its transforms and sandboxes
    assert max(settled) - settled[0] < 50, f"worker RSS from {settled[0]} to {max(settled)} MB"


def exercise(
    server: Server, segment: SegmentStandIn, stand_ins: dict[str, DestinationStandIn]
) -> tuple[dict[str, float], list[dict[str, Any]], list[float]]:
    """Post a payment a second through the outage and a bit after; then wait for every lane to
    finish. What was posted when, the paused destinations seen, the worker's RSS samples."""
    posted: dict[str, float] = {}
    paused_seen: list[dict[str, Any]] = []
    memory: list[float] = []
    worker = server.wait_until(server.worker_pid, what="the worker process")
    outage = stand_ins["outage"]
    failing = outage.answer
    assert isinstance(failing, Outage)
    requests_when_paused: int | None = None
    after = 0
    while after < EVENTS_AFTER_OUTAGE:
        assert len(posted) < 60, "the failing destination was never paused and probed"
        body = payment(len(posted))
        assert server.post(body).status_code == 200
        posted[body["data"]["payment_id"]] = time.monotonic()
        shown = server.api("GET", "/api/status").json()["paused_destinations"]
        paused_seen += shown
        memory.append(process_memory(worker).rss_mb)
        if failing.ended.is_set():
            after += 1
        elif shown and requests_when_paused is None:
            requests_when_paused = len(outage.requests())
        elif requests_when_paused is not None and len(outage.requests()) > requests_when_paused:
            failing.end()  # paused, then probed while still failing: it may recover now
        time.sleep(1.0)
    segment.wait_for(len(posted))
    outage_url = outage.url
    expected = {"trickle": "delivered", "slow": "delivered", "outage": "delivered", "flood": "dead"}
    for name, status in expected.items():
        server.wait_until(
            lambda name=name, status=status: lane_done(server, name, status, len(posted)),
            # The paused destination resumes at its next probe, and each of its deliveries
            # at its own next try: intervals that grow when probes fail on busy cores.
            timeout=200,
            what=f"every delivery of {name} to be {status}",
        )
    assert all(p["destination"] == outage_url for p in paused_seen)
    outage_deliveries = server.deliveries_of("outage")
    assert max(d["attempts"] for d in outage_deliveries) <= 6  # paused: attempts unspent
    flood = server.deliveries_of("flood")[0]
    assert flood["error"].startswith("HTTP 400: xxxx") and len(flood["error"]) < 300
    return posted, paused_seen, memory


def lane_done(server: Server, transform: str, status: str, count: int) -> bool:
    found = server.deliveries_of(transform)
    return len(found) == count and all(d["status"] == status for d in found)


def arrival_times(segment: SegmentStandIn) -> dict[str, float]:
    """When each payment's message arrived at the stand-in (monotonic seconds)."""
    return {
        message["properties"]["payment_id"]: request.at
        for request in segment.accepted()
        for message in request.messages
    }


# --- in process: settings, credentials, secrets, fan-out ----------------------------------------


def settings_for(tmp_path: Path, **extra: Any) -> Any:
    return load_settings(
        transforms=tmp_path / "transforms",
        data_dir=tmp_path / "data",
        webhook_secret=SECRET,
        segment_write_key=WRITE_KEY,
        worker_process=False,
        retry_base_seconds=0.1,
        **extra,
    )


async def post(client: httpx.AsyncClient, body: dict[str, Any], webhook_id: str) -> None:
    raw = json.dumps(body).encode()
    answer = await client.post(
        "/webhooks/dodo", content=raw, headers=signing.sign(SECRET, webhook_id, raw)
    )
    assert answer.status_code == 200, answer.text


async def until(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.05)


@pytest.mark.integration
def test_a_url_env_or_variable_changed_in_transforms_toml_reaches_the_next_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rotating a leaked webhook URL: the next event goes to the new one, never the old."""
    folder = tmp_path / "transforms"
    folder.mkdir()
    (folder / "alert.js").write_text(FORWARD)
    toml = folder / "transforms.toml"
    with DestinationStandIn().running() as old, DestinationStandIn().running() as new:
        monkeypatch.setenv("HOOK_OLD", old.url + "/services/T0/B0/old")
        monkeypatch.setenv("HOOK_NEW", new.url + "/services/T0/B0/new")
        toml.write_text('[alert]\nurl = "${HOOK_OLD}"\nenv = { ROOM = "sales" }\n')
        settings = settings_for(tmp_path)

        async def run() -> None:
            async with in_process(settings) as (service, client):
                await post(client, payment(1), "msg_1")
                await until(lambda: len(old.requests()) == 1)
                for n, text in enumerate(
                    (
                        '[alert]\nurl = "${HOOK_NEW}"\nenv = { ROOM = "sales" }\n',  # ${NAME}
                        f'[alert]\nurl = "{new.url}/services/T0/B0/new"\nenv = {{ ROOM = "ops" }}\n',
                    ),
                    start=2,
                ):
                    toml.write_text(text)
                    service.registry.reload()
                    await post(client, payment(n), f"msg_{n}")
                    await until(lambda n=n: len(new.requests()) == n - 1)

        asyncio.run(run())
        assert [r.path for r in old.requests()] == ["/services/T0/B0/old"]
        assert [r.json["room"] for r in new.requests()] == ["sales", "ops"]
        assert {r.path for r in new.requests()} == {"/services/T0/B0/new"}


@pytest.mark.integration
def test_credentials_reach_only_their_destination_and_no_secret_shows_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "transforms"
    folder.mkdir()
    with (
        DestinationStandIn(Answer(401, echo_headers=True)).running() as mail,
        DestinationStandIn().running() as elsewhere,
        SegmentStandIn(WRITE_KEY).running() as segment,
    ):
        # The handler sends each event to its configured url, to another allowed host, and to
        # Segment: only the first may carry the configured key.
        (folder / "mail.js").write_text(
            "function handler(webhook) {\n"
            "  const id = webhook.payload.data.payment_id;\n"
            f'  const other = {{ ...webhook, url: "{elsewhere.url}/collect", payload: {{ id }} }};\n'
            '  const track = { ...webhook, url: "https://api.segment.io/v1/track",'
            ' payload: { userId: "u1", event: "Payment Completed", properties: { hook: webhook.env.HOOK } } };\n'
            "  webhook.payload = { id };\n"
            "  return [webhook, other, track];\n"
            "}\n"
        )
        (folder / "transforms.toml").write_text(
            "[mail]\n"
            f'url = "{mail.url}/emails?token=${{MAIL_TOKEN}}"\n'
            'headers = { Authorization = "Bearer ${MAIL_KEY}" }\n'
            'env = { HOOK = "${HOOK_SECRET}" }\n'
        )
        monkeypatch.setenv("MAIL_KEY", "re_live_Key123456")
        monkeypatch.setenv("MAIL_TOKEN", "tok_url_Secret99")
        monkeypatch.setenv("HOOK_SECRET", "hook_env_Secret77")
        other_host = elsewhere.url.removeprefix("http://")
        settings = settings_for(tmp_path, allowed_hosts=other_host, segment_endpoint=segment.url)
        secrets = ["re_live_Key123456", "tok_url_Secret99", "hook_env_Secret77", WRITE_KEY]
        shown: list[str] = []

        async def run() -> None:
            async with in_process(settings) as (_, client):
                await post(client, payment(1), "msg_1")
                listed: list[dict[str, Any]] = []
                while not listed or any(row["status"] == "pending" for row in listed):
                    await asyncio.sleep(0.05)
                    listed = (await client.get("/api/deliveries")).json()
                shown.append(json.dumps(listed))
                to_mail = next(row for row in listed if row["destination"] == mail.url)
                assert to_mail["sent_headers"]["Authorization"] == "[redacted]"
                to_other = next(row for row in listed if row["destination"] == elsewhere.url)
                assert "Authorization" not in to_other["sent_headers"]
                for row in listed:
                    shown.append((await client.get(f"/api/deliveries/{row['id']}")).text)
                    shown.append((await client.get(f"/deliveries/{row['id']}")).text)
                shown.append((await client.get("/deliveries")).text)
                shown.append((await client.get("/api/transforms")).text)
                shown.append((await client.get("/metrics")).text)

        asyncio.run(run())
    (to_mail,) = mail.requests()
    assert to_mail.headers["Authorization"] == "Bearer re_live_Key123456"
    assert to_mail.path == "/emails?token=tok_url_Secret99"
    (to_other,) = elsewhere.requests()
    assert "Authorization" not in to_other.headers
    basic = segment.received[0].headers["Authorization"]
    assert "re_live" not in basic
    shown.append(caplog.text)
    for text in shown:
        for secret in secrets:
            assert secret not in text


FAN_OUT = """
function handler(webhook) {
  const out = [];
  for (let i = 0; i < COUNT; i++) out.push({ ...webhook, payload: { i } });
  return out;
}
"""


@pytest.mark.integration
def test_fan_out_is_capped_per_event_and_fair_to_other_transforms(tmp_path: Path) -> None:
    """60,000 requests from one event are refused; 100 each from three events, to a slow
    destination, never keep another transform's Segment message waiting."""
    folder = tmp_path / "transforms"
    folder.mkdir()

    def slow(request: Received) -> Answer:
        return Answer(200, delay=0.2)

    with (
        DestinationStandIn(slow).running() as bulk_hook,
        DestinationStandIn().running() as blast_hook,
        SegmentStandIn(WRITE_KEY).running() as segment,
    ):
        (folder / "blast.js").write_text(FAN_OUT.replace("COUNT", "60000"))
        (folder / "bulk.js").write_text(FAN_OUT.replace("COUNT", "100"))
        (folder / "track.js").write_text(TRACK)
        (folder / "transforms.toml").write_text(
            f'[blast]\nurl = "{blast_hook.url}/in"\n'
            f'[bulk]\nurl = "{bulk_hook.url}/in"\nconcurrency = 2\n'
        )
        settings = settings_for(tmp_path, segment_endpoint=segment.url)
        waits: list[float] = []

        async def run() -> None:
            async with in_process(settings) as (_, client):
                for n in range(3):
                    posted = time.monotonic()
                    await post(client, payment(n), f"msg_{n}")
                    await until(lambda n=n: len(segment.messages()) > n, 10)
                    waits.append(time.monotonic() - posted)
                    await asyncio.sleep(0.5)
                blast = (await client.get("/api/deliveries", params={"transform": "blast"})).json()
                assert [d["status"] for d in blast] == ["failed"] * 3
                assert "at most 100 are sent (max_requests in transforms.toml)" in blast[0]["error"]
                bulk = (
                    await client.get("/api/deliveries", params={"transform": "bulk", "limit": 1000})
                ).json()
                assert len(bulk) == 300
                assert sum(d["status"] == "delivered" for d in bulk) < 100  # a backlog it is

        asyncio.run(run())
    assert blast_hook.requests() == []
    # The first event also starts the sandbox process; the later ones meet bulk's backlog.
    assert max(waits[1:]) < 2.0, waits
