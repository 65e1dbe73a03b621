"""The connector examples: a handler per Dodo connector page, plus its transforms.toml table.

Each runs on the 47 example events as the service would (its `events`, `url` and
`headers`): it delivers exactly the events it handles, to its destination, with its
credential, and nothing else; what it sends is what V8 (Node.js) makes of the same handler;
and `check` has nothing to warn of. Taking away `events`, `url` or a credential's variable
is what `check` then warns of.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from dodo_transform.outbound.dispatcher import Dispatcher
from dodo_transform.outbound.ratelimit import RateLimiter
from dodo_transform.outbound.sender import Sender
from dodo_transform.outgoing.destination import Allowlist, Configured
from dodo_transform.pipeline.delivery_settings import DeliverySettings
from dodo_transform.pipeline.outcomes import outcome_deliveries
from dodo_transform.settings import SEGMENT_REGIONS
from dodo_transform.store import Delivery, DeliveryStatus
from dodo_transform.transforms import checks
from dodo_transform.transforms.engine import OutcomeKind
from dodo_transform.transforms.event import EVENT_TYPES
from dodo_transform.transforms.registry import Registry
from dodo_transform.transforms.settings import read_settings
from tests.conftest import EXAMPLES

CONNECTORS = EXAMPLES / "connectors"
EVENTS = EXAMPLES / "events"
# What the connectors' tables in transforms.toml need from the environment.
ENVIRON = {
    name: f"test-{name.lower()}"
    for name in re.findall(r"\$\{(\w+)\}", (CONNECTORS / "transforms.toml").read_text())
}


def of_kind(kind: str) -> set[str]:
    return {event_type for event_type in EVENT_TYPES if event_type.startswith(kind + ".")}


PAYMENTS, SUBSCRIPTIONS = of_kind("payment"), of_kind("subscription")
DISPUTES, REFUNDS = of_kind("dispute"), of_kind("refund")
# The events each connector delivers; every other example event it leaves alone.
DELIVERS = {
    "slack_payment_alerts": {"payment.succeeded", "payment.failed"},
    "discord_subscription_embeds": {
        "subscription.active",
        "subscription.cancelled",
        "subscription.on_hold",
    },
    "teams_dispute_cards": DISPUTES,
    "zapier_flat_payments": PAYMENTS | REFUNDS,
    "n8n_all_events": set(EVENT_TYPES),
    "windmill_refund_jobs": REFUNDS,
    "inngest_events": PAYMENTS | SUBSCRIPTIONS,
    "hubspot_contacts": {"payment.succeeded"},
    "close_leads": {"subscription.active"},
    "customerio_events": PAYMENTS | SUBSCRIPTIONS,
    "loops_events": {"subscription.active", "subscription.renewed", "subscription.cancelled"},
    "resend_receipts": {"payment.succeeded"},
    "sendgrid_failed_payments": {"payment.failed"},
    "mailerlite_subscribers": {"payment.succeeded", "subscription.active"},
    "autosend_refund_emails": {"refund.succeeded"},
    "keplars_receipts": {"payment.succeeded"},
    "datafast_revenue": {"payment.succeeded"},
    "dub_sales": {"payment.succeeded"},
}


def trier(environ: dict[str, str] | None = None) -> checks.Trier:
    """Runs files as a service on its defaults would: only Segment's hosts listed."""
    return checks.Trier(Allowlist(SEGMENT_REGIONS["us"]), ENVIRON if environ is None else environ)


def test_every_connector_has_its_table_and_its_expectations() -> None:
    tables = read_settings(CONNECTORS, ENVIRON)
    assert sorted(path.stem for path in CONNECTORS.glob("*.js")) == sorted(DELIVERS)
    assert sorted(tables) == sorted(DELIVERS)
    assert sorted(path.stem for path in EVENTS.glob("*.json")) == sorted(EVENT_TYPES)


def test_every_connector_gives_its_golden_requests_on_every_event_and_no_warning() -> None:
    rows = list(checks.check(CONNECTORS, EVENTS, CONNECTORS / "expected", trier()))
    assert len(rows) == len(DELIVERS) * 47
    assert [row for row in rows if row.verdict is not checks.Verdict.SAME] == []
    assert {warning for row in rows for warning in row.warnings} == set()


@pytest.mark.parametrize("name", sorted(DELIVERS))
def test_each_connector_delivers_exactly_the_events_it_handles_with_its_credential(
    name: str,
) -> None:
    path = CONNECTORS / f"{name}.js"
    runner = trier()
    settings = runner.settings(path)
    transform = runner.load(path, settings)
    delivered = set()
    for event in checks.load_events(EVENTS):
        trial = runner.run(transform, settings, event)
        assert trial.outcome.kind in (OutcomeKind.DELIVER, OutcomeKind.SKIPPED), trial.outcome
        if trial.outcome.kind is OutcomeKind.DELIVER:
            delivered.add(event.event_type)
            for request in trial.outcome.requests:
                assert urlsplit(request.url).hostname == urlsplit(settings.url).hostname
            for shown in trial.requests:
                expected = {"Authorization": "[redacted]"} if settings.headers else {}
                assert shown["headers"] == expected
    assert delivered == DELIVERS[name]
    for header, value in settings.header_values().items():
        assert value.split()[-1].startswith("test-"), header  # filled in from the environment


NODE = shutil.which("node")
# Runs each handler on each event as Svix's V8 would, with the webhook the engine builds.
NODE_RUNNER = """
const { cases } = JSON.parse(require("fs").readFileSync(0, "utf8"));
const out = cases.map(({ source, url, eventType, body }) => {
  const handler = new Function(source + "\\nreturn handler;")();
  const result = handler({ method: "POST", url, eventType, payload: JSON.parse(body),
    cancel: false, headers: {}, env: {} });
  return { method: result.method, url: result.url, payload: result.payload };
});
process.stdout.write(JSON.stringify(out));
"""


@pytest.mark.skipif(NODE is None, reason="Node.js is not installed")
def test_what_each_connector_sends_is_what_v8_makes_of_it() -> None:
    """Dates, amounts and currencies in the handlers render as V8 renders them."""
    assert NODE is not None
    runner = trier()
    cases: list[dict[str, Any]] = []
    ours: list[dict[str, Any]] = []
    for name in sorted(DELIVERS):
        path = CONNECTORS / f"{name}.js"
        settings = runner.settings(path)
        transform = runner.load(path, settings)
        events = [e for e in checks.load_events(EVENTS) if e.event_type in DELIVERS[name]]
        for event, trial in zip(events, runner.run_all(transform, settings, events), strict=True):
            (request,) = trial.outcome.requests
            ours.append({"method": request.method, "url": request.url, "payload": request.payload})
            cases.append(
                {
                    "source": transform.source,
                    "url": settings.url,
                    "eventType": event.event_type,
                    "body": event.body,
                }
            )
    done = subprocess.run(
        [NODE, "-e", NODE_RUNNER],
        input=json.dumps({"cases": cases}),
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"TZ": "UTC"},
        timeout=120,
    )
    assert json.loads(done.stdout) == ours


def copy_of(tmp_path: Path, name: str, table: str) -> Path:
    folder = tmp_path / "connectors"
    folder.mkdir()
    shutil.copy(CONNECTORS / f"{name}.js", folder)
    (folder / "transforms.toml").write_text(table)
    return folder


def warnings_of(folder: Path, environ: dict[str, str] | None = None) -> set[str]:
    rows = checks.check(folder, EVENTS, folder / "expected", trier(environ))
    return {warning for row in rows for warning in row.warnings}


def test_without_events_a_connector_would_send_raw_dodo_bodies_and_check_says_so(
    tmp_path: Path,
) -> None:
    folder = copy_of(
        tmp_path,
        "slack_payment_alerts",
        '[slack_payment_alerts]\nurl = "https://hooks.slack.com/services/T0/B0/X"\n',
    )
    (warning,) = warnings_of(folder)
    assert warning.startswith("the Dodo event goes out unchanged")
    assert "events = [...] for [slack_payment_alerts]" in warning


def test_without_url_a_connector_that_leaves_it_to_the_endpoint_is_pointed_out(
    tmp_path: Path,
) -> None:
    folder = copy_of(
        tmp_path, "discord_subscription_embeds", '[discord_subscription_embeds]\nevents = ["*"]\n'
    )
    (warning,) = warnings_of(folder)
    assert warning.startswith("the handler sets no url and transforms.toml gives none")


def test_without_url_a_connector_that_sets_its_own_would_be_blocked(tmp_path: Path) -> None:
    folder = copy_of(
        tmp_path,
        "resend_receipts",
        '[resend_receipts]\nevents = ["payment.succeeded"]\n'
        'headers = { Authorization = "Bearer ${RESEND_API_KEY}" }\n',
    )
    no_credentials, blocked = sorted(warnings_of(folder))
    assert no_credentials == (
        "[resend_receipts] sends to https://api.resend.com: the headers in transforms.toml go"
        " only to its url (none is set), so this request carries none"
    )
    assert blocked.startswith("api.resend.com is not an allowed destination")


def test_a_handler_sending_off_its_configured_destination_is_warned_of(tmp_path: Path) -> None:
    """Its credentials stay with the configured url's destination: the warning says so."""
    folder = copy_of(
        tmp_path,
        "resend_receipts",
        '[resend_receipts]\nurl = "https://mail.example.com/send"\n'
        'events = ["payment.succeeded"]\n'
        'headers = { Authorization = "Bearer ${RESEND_API_KEY}" }\n',
    )
    assert (
        "[resend_receipts] sends to https://api.resend.com: the headers in transforms.toml go"
        " only to https://mail.example.com, so this request carries none"
    ) in warnings_of(folder)


def test_without_its_variable_a_connector_is_warned_of_and_not_loaded(tmp_path: Path) -> None:
    folder = copy_of(
        tmp_path,
        "resend_receipts",
        '[resend_receipts]\nurl = "https://api.resend.com/emails"\n'
        'events = ["payment.succeeded"]\n'
        'headers = { Authorization = "Bearer ${RESEND_API_KEY}" }\n',
    )
    (warning,) = warnings_of(folder, environ={})
    assert warning.startswith("RESEND_API_KEY is not set in the environment")
    registry = Registry(folder, environ={})
    registry.reload()
    assert "resend_receipts" not in registry.current()
    assert "RESEND_API_KEY is not set" in registry.errors["resend_receipts"]


class Destination:
    """Stand-in for every destination at the httpx seam: records what reaches it."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={"ok": True})


def test_the_sender_delivers_each_connector_request_with_its_credential() -> None:
    """From the registry's settings through the dispatcher to the wire, without the
    destinations' hosts in DODO_TRANSFORM_ALLOWED_HOSTS."""
    registry = Registry(CONNECTORS, environ=ENVIRON)
    registry.reload()
    assert registry.errors == {}
    destination = Destination()
    dispatcher = Dispatcher(
        Sender(
            segment_base_url=SEGMENT_REGIONS["us"],
            transport=httpx.MockTransport(destination),
        ),
        write_key_for=lambda transform: None,
        configured_for=DeliverySettings(registry).configured_for,
        limiter=RateLimiter(1000, burst=1000),
        dry_run=False,
    )
    events = {event.event_type: event for event in checks.load_events(EVENTS)}
    due = []
    for name, transform in sorted(registry.current().items()):
        event = events[sorted(DELIVERS[name])[0]]
        (delivery,) = outcome_deliveries(transform, transform.run(event))
        due.append(as_stored(len(due) + 1, event.webhook_id, delivery))
    results = asyncio.run(dispatcher.dispatch(due))
    assert {result.status for result in results} == {DeliveryStatus.DELIVERED}
    assert len(destination.requests) == len(DELIVERS)
    for request in destination.requests:
        name = next(
            n
            for n in DELIVERS
            if urlsplit(registry.settings(n).target_url).hostname == request.url.host
        )
        expected = registry.settings(name).header_values().get("Authorization")
        assert request.headers.get("authorization") == expected
    assert Configured() == DeliverySettings(registry).configured_for("not_a_connector")


def as_stored(number: int, webhook_id: str, delivery: Any) -> Delivery:
    now = time.time()
    return Delivery(
        number,
        number,
        webhook_id,
        "payment.succeeded",
        delivery.transform,
        delivery.version,
        delivery.index,
        0,
        DeliveryStatus.PENDING,
        delivery.request,
        [],
        None,
        0,
        0.0,
        now,
        now,
        now,
    )
