"""Sloppy scripts and async handlers wherever handlers run: through the whole in-process service
(signed webhooks in, the pipeline's sandbox processes, the store, Segment at the httpx seam),
a backfill, `test` and `check`, and the console's test panel."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from dodo_transform.cli import app
from dodo_transform.settings import load_settings
from dodo_transform.testing import SECRET, InProcess, in_process
from tests.conftest import sample
from tests.test_console import Console

SLOPPY = """function handler(webhook) {
  total = webhook.payload.data.total_amount;            // no let: a global, in sloppy mode
  globalThis.counter = (globalThis.counter || 0) + 1;   // 1 on every event, or state leaked
  webhook.url = "https://api.segment.io/v1/track";
  webhook.payload = {
    userId: webhook.payload.data.customer.customer_id,
    event: "Payment Completed",
    properties: { total: total, counter: counter },
  };
  return webhook;
}
"""
ASYNC = """async function handler(webhook) {
  const customer = await Promise.resolve(webhook.payload.data.customer);
  webhook.url = "https://api.segment.io/v1/identify";
  webhook.payload = { userId: customer.customer_id, traits: { email: customer.email } };
  return webhook;
}
"""
NEVER_SETTLES = """async function handler(webhook) {
  await new Promise(function (resolve) { /* waits for a timer there is none of */ });
  return webhook;
}
"""


class Relay(InProcess):
    """The service, and the Segment messages that reached the httpx seam."""

    def __init__(self, *args: Any, sent: list[dict[str, Any]]) -> None:
        super().__init__(*args)
        self.sent = sent

    async def messages(self, count: int) -> list[dict[str, Any]]:
        return list(await self.until(lambda: self._messages_at_least(count)))

    async def deliveries_at_least(self, status: str, count: int) -> list[dict[str, Any]] | None:
        found = await self.deliveries(status)
        return found if len(found) >= count else None

    async def _messages_at_least(self, count: int) -> list[dict[str, Any]] | None:
        return self.sent if len(self.sent) >= count else None


def run_with(
    tmp_path: Path, handlers: dict[str, str], test: Callable[[Relay], Awaitable[None]]
) -> None:
    folder = tmp_path / "transforms"
    folder.mkdir()
    for name, source in handlers.items():
        (folder / f"{name}.js").write_text(source)
    settings = load_settings(
        transforms=folder,
        data_dir=tmp_path / "data",
        webhook_secret=SECRET,
        worker_process=False,
        segment_write_key="wk_test",
    )
    sent: list[dict[str, Any]] = []

    def segment(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent.extend(body.get("batch", [body]))
        return httpx.Response(200, json={"success": True})

    async def main() -> None:
        async with in_process(settings, transport=httpx.MockTransport(segment)) as (
            service,
            client,
        ):
            await test(Relay(service, client, folder, sent=sent))

    asyncio.run(main())


def test_a_sloppy_handler_delivers_the_same_for_every_event(tmp_path: Path) -> None:
    async def test(relay: Relay) -> None:
        for n in range(6):
            await relay.send_webhook(f"msg_{n}", sample("payment.succeeded"))
        messages = await relay.messages(6)
        properties = [message["properties"] for message in messages]
        assert properties == [{"total": 2499, "counter": 1}] * 6
        # Recorded as delivered once Segment's answer is committed, a moment after it arrived.
        delivered = await relay.until(lambda: relay.deliveries_at_least("delivered", 6))
        assert len(delivered) == 6

    run_with(tmp_path, {"sloppy": SLOPPY}, test)


def test_an_async_handler_delivers_and_a_never_settling_one_fails_saying_why(
    tmp_path: Path,
) -> None:
    async def test(relay: Relay) -> None:
        await relay.send_webhook("msg_async", sample("payment.succeeded"))
        (identify,) = await relay.messages(1)
        customer = sample("payment.succeeded")["data"]["customer"]
        assert identify["userId"] == customer["customer_id"]
        assert identify["traits"] == {"email": customer["email"]}
        (failed,) = await relay.until(lambda: relay.deliveries("failed"))
        assert failed["transform"] == "waits"
        assert failed["error"].endswith(
            "waits.js: the handler's promise never settled: no timers or network here; "
            "await only what resolves without them, or return the webhook"
        )

    run_with(tmp_path, {"identify": ASYNC, "waits": NEVER_SETTLES}, test)


def test_a_backfill_runs_an_async_handler_over_stored_events(tmp_path: Path) -> None:
    async def test(relay: Relay) -> None:
        for n in range(2):
            await relay.send_webhook(f"msg_{n}", sample("payment.succeeded"))
        await relay.messages(2)  # the sloppy transform's
        (relay.folder / "identify.js").write_text(ASYNC)
        await asyncio.to_thread(relay.service.registry.reload)
        started = await relay.client.post(
            "/api/backfills", params={"transform": "identify", "since": "2000-01-01"}
        )
        assert started.status_code == 201, started.text
        messages = await relay.messages(4)
        identified = [message for message in messages if message["type"] == "identify"]
        assert len(identified) == 2

    run_with(tmp_path, {"sloppy": SLOPPY}, test)


def test_test_and_check_await_an_async_handler_and_run_a_sloppy_one(tmp_path: Path) -> None:
    folder = tmp_path / "transforms"
    folder.mkdir()
    (folder / "identify.js").write_text(ASYNC)
    (folder / "sloppy.js").write_text(SLOPPY)
    events = tmp_path / "events"
    events.mkdir()
    (events / "payment.succeeded.json").write_text(json.dumps(sample("payment.succeeded")))
    for name in ("identify", "sloppy"):
        tried = CliRunner().invoke(
            app, ["test", str(folder / f"{name}.js"), str(events / "payment.succeeded.json")]
        )
        assert tried.exit_code == 0 and "outcome: deliver" in tried.output, tried.output
    checked = CliRunner().invoke(
        app, ["check", "--transforms", str(folder), "--events", str(events), "--update",
              "--expected", str(tmp_path / "expected")],
    )  # fmt: skip
    assert checked.exit_code == 0, checked.output
    golden = json.loads((tmp_path / "expected/identify/payment.succeeded.json").read_text())
    assert golden["requests"][0]["url"] == "https://api.segment.io/v1/identify"


def test_the_consoles_test_panel_awaits_an_async_handler(tmp_path: Path) -> None:
    async def test(relay: Relay) -> None:
        console = Console(relay.service, relay.client, relay.folder)
        for source, expected in ((ASYNC, "deliver"), (NEVER_SETTLES, "error")):
            answer = await console.post(
                "/transforms/sloppy/test", {"source": source, "sample": "example:payment.succeeded"}
            )
            assert f'data-testid="outcome">{expected}<' in answer.text, answer.text
        assert "the handler&#39;s promise never settled" in answer.text

    run_with(tmp_path, {"sloppy": SLOPPY}, test)
