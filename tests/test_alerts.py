"""Alerts: one message per problem to DODO_TRANSFORM_ALERT_URL, deduplicated and paced."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from dodo_transform import alerts, signing
from dodo_transform.alerts import Alerter
from dodo_transform.settings import load_settings
from dodo_transform.testing import SECRET, in_process
from tests.conftest import sample

ALERT_URL = "https://hooks.slack.example/services/T000/B000/secret-token"


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_same_alert_is_sent_once_an_hour_and_all_of_them_are_paced() -> None:
    posted: list[dict[str, Any]] = []

    def record(request: httpx.Request) -> httpx.Response:
        posted.append(json.loads(request.content))
        return httpx.Response(200)

    clock = Clock()
    registry = CollectorRegistry()

    async def run() -> None:
        alerter = Alerter(
            ALERT_URL, registry=registry, transport=httpx.MockTransport(record), clock=clock
        )
        await alerter.start()
        for _ in range(5):
            alerter.raise_alert("dead", "t", "deliveries of t are going dead")
        clock.now += alerts.REPEAT_SECONDS + 1
        alerter.raise_alert("dead", "t", "again, an hour later")
        for n in range(alerts.BURST + 5):
            alerter.raise_alert("broken", f"t{n}", f"transform t{n} does not load")
        while alerter._queue.qsize():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        await alerter.stop()

    asyncio.run(run())
    texts = [p["text"] for p in posted]
    assert texts[:2] == [
        "dodo-transform: deliveries of t are going dead",
        "dodo-transform: again, an hour later",
    ]
    # The hour later opens a new minute: it and 9 of the 15 that follow make its 10.
    assert len(texts) == 2 + alerts.BURST - 1
    sent = registry.get_sample_value("dodo_alerts_sent_total", {"kind": "dead"})
    held = registry.get_sample_value("dodo_alerts_suppressed_total", {"kind": "dead"})
    assert (sent, held) == (2.0, 4.0)


def test_a_wrong_write_key_and_a_broken_file_raise_alerts_without_secrets(tmp_path: Path) -> None:
    posted: list[str] = []

    def world(request: httpx.Request) -> httpx.Response:
        if str(request.url) == ALERT_URL:
            posted.append(json.loads(request.content)["text"])
            return httpx.Response(200)
        return httpx.Response(401, text="bad write key")  # Segment

    folder = tmp_path / "transforms"
    folder.mkdir()
    (folder / "t.js").write_text(
        "function handler(w) { w.url = 'https://api.segment.io/v1/track';"
        " w.payload = {userId: 'u', event: 'Payment Completed'}; return w; }"
    )
    (folder / "broken.js").write_text("function handler(w) {")
    settings = load_settings(
        transforms=folder,
        data_dir=tmp_path / "data",
        webhook_secret=SECRET,
        segment_write_key="wk_wrong_Secret",
        alert_url=ALERT_URL,
        worker_process=False,
    )

    async def run() -> None:
        async with in_process(settings, transport=httpx.MockTransport(world)) as (_, client):
            body = json.dumps(sample("payment.succeeded")).encode()
            answer = await client.post(
                "/webhooks/dodo", content=body, headers=signing.sign(SECRET, "msg_1", body)
            )
            assert answer.status_code == 200
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(posted) < 3:
                await asyncio.sleep(0.05)

    asyncio.run(run())
    kinds = sorted(posted)
    assert any("transform broken does not load" in text for text in kinds)
    assert any("deliveries of transform t are going dead" in text for text in kinds)
    assert any("refused transform t's credentials (HTTP 401)" in text for text in kinds)
    assert not any("wk_wrong_Secret" in text or "secret-token" in text for text in kinds)


def test_an_alert_the_url_refuses_is_logged_with_its_status_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers = iter([httpx.Response(404), httpx.ConnectError("refused")])

    def refuse(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    registry = CollectorRegistry()

    async def run() -> None:
        alerter = Alerter(ALERT_URL, registry=registry, transport=httpx.MockTransport(refuse))
        await alerter.start()
        alerter.raise_alert("dead", "t", "deliveries of t are going dead")
        alerter.raise_alert("broken", "u", "transform u does not load")
        for _ in range(200):
            if registry.get_sample_value("dodo_alerts_suppressed_total", {"kind": "broken"}):
                break
            await asyncio.sleep(0.01)
        await alerter.stop()

    with caplog.at_level("WARNING", logger="dodo_transform.alerts"):
        asyncio.run(run())
    errors = [getattr(r, "error", None) for r in caplog.records if "alert not sent" in r.message]
    assert errors == ["HTTP 404", "ConnectError"]
    assert "secret-token" not in caplog.text
    for kind in ("dead", "broken"):
        assert registry.get_sample_value("dodo_alerts_suppressed_total", {"kind": kind}) == 1.0


def test_a_destination_that_keeps_failing_is_paused_with_one_alert_naming_it(
    tmp_path: Path,
) -> None:
    posted: list[str] = []

    def world(request: httpx.Request) -> httpx.Response:
        if str(request.url) == ALERT_URL:
            posted.append(json.loads(request.content)["text"])
            return httpx.Response(200)
        return httpx.Response(503, text="upstream down")  # the destination

    folder = tmp_path / "transforms"
    folder.mkdir()
    (folder / "hook.js").write_text("function handler(w) { return w; }")
    (folder / "transforms.toml").write_text('[hook]\nurl = "https://hooks.example.com/in"\n')
    settings = load_settings(
        transforms=folder,
        data_dir=tmp_path / "data",
        webhook_secret=SECRET,
        alert_url=ALERT_URL,
        worker_process=False,
        retry_base_seconds=0.01,
    )

    async def run() -> None:
        async with in_process(settings, transport=httpx.MockTransport(world)) as (_, client):
            for n in range(8):
                body = json.dumps(sample("payment.succeeded")).encode()
                headers = signing.sign(SECRET, f"msg_{n}", body)
                answer = await client.post("/webhooks/dodo", content=body, headers=headers)
                assert answer.status_code == 200
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not any("paused" in t for t in posted):
                await asyncio.sleep(0.05)
            status = (await client.get("/api/status")).json()
            (paused,) = status["paused_destinations"]
            assert paused["destination"] == "https://hooks.example.com"
            assert paused["transform"] == "hook"

    asyncio.run(run())
    (alert,) = [text for text in posted if "paused" in text]
    # How many wait depends on how many events were transformed when it paused: 5 to 8.
    assert re.match(
        r"dodo-transform: deliveries of transform hook to https://hooks\.example\.com are paused"
        r" after 5 failed attempts in a row \(last: HTTP 503: upstream down\); [5-8] wait,"
        r" their attempts unspent",
        alert,
    ), alert
