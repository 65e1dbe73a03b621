"""The shipped examples: every (handler, event) pair matches its golden outcome, and the docs'
seed handlers, pasted as printed, build exactly the Segment calls the docs describe."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest

from dodo_transform.transforms import checks
from dodo_transform.transforms.engine import OutcomeKind, Transform
from dodo_transform.transforms.event import Event
from dodo_transform.transforms.registry import load_file
from tests.conftest import EXAMPLES, SHIPPED, event_from, sample

HANDLERS = sorted((EXAMPLES / "handlers").glob("*.js"))
EVENTS = sorted((EXAMPLES / "events").glob("*.json"))
EVENT_TYPES = [
    "payment.succeeded",
    "payment.failed",
    "payment.processing",
    "payment.cancelled",
    "refund.succeeded",
    "refund.failed",
    "dispute.opened",
    "dispute.expired",
    "dispute.accepted",
    "dispute.cancelled",
    "dispute.challenged",
    "dispute.won",
    "dispute.lost",
    "subscription.active",
    "subscription.renewed",
    "subscription.on_hold",
    "subscription.paused",
    "subscription.unpaused",
    "subscription.cancelled",
    "subscription.failed",
    "subscription.expired",
    "subscription.plan_changed",
    "subscription.updated",
    "subscription.update_payment_method",
    "license_key.created",
    "payout.created",
    "payout.on_hold",
    "payout.in_progress",
    "payout.failed",
    "payout.success",
    "credit.added",
    "credit.deducted",
    "credit.expired",
    "credit.rolled_over",
    "credit.rollover_forfeited",
    "credit.overage_charged",
    "credit.overage_reset",
    "credit.manual_adjustment",
    "credit.balance_low",
    "abandoned_checkout.detected",
    "abandoned_checkout.recovered",
    "dunning.started",
    "dunning.recovered",
    "entitlement_grant.created",
    "entitlement_grant.delivered",
    "entitlement_grant.failed",
    "entitlement_grant.revoked",
]
SEEDS = ["segment_track_payments", "segment_subscription_lifecycle", "segment_identify_customer"]


def test_there_is_one_example_for_each_of_the_47_event_types() -> None:
    assert len(EVENT_TYPES) == 47
    assert sorted(path.stem for path in EVENTS) == sorted(EVENT_TYPES)
    for path in EVENTS:
        body = json.loads(path.read_text())
        assert body["type"] == path.stem
        assert set(body) == {"business_id", "type", "timestamp", "data"}
        assert body["data"]["payload_type"]


@functools.cache
def compiled(handler: Path) -> Transform:
    """Each handler compiled once for all its events, as the service runs a version on every
    event (a compile costs some 25 ms; that no run leaves anything for the next is
    tests/test_sandbox_isolation.py's point)."""
    return load_file(handler)


@pytest.mark.parametrize("handler", HANDLERS, ids=lambda p: p.stem)
@pytest.mark.parametrize("event", EVENTS, ids=lambda p: p.stem)
def test_example_matches_golden(handler: Path, event: Path) -> None:
    outcome = compiled(handler).run(Event.from_body(event.read_bytes()))
    golden = checks.golden_path(EXAMPLES / "expected", handler.stem, event.stem)
    assert outcome.to_json() == json.loads(golden.read_text())


@pytest.mark.parametrize("name", SEEDS)
def test_shipped_transforms_are_the_seed_handlers_formatted(name: str) -> None:
    """The shipped handlers (the tests' copy of transforms/, which CI checks against it) are the
    docs' handlers formatted for editing, line for line and token for token the verbatim seed
    text kept in examples/handlers/ (so errors name the same lines)."""
    formatted = (SHIPPED / f"{name}.js").read_text()
    first, *rest = (EXAMPLES / "handlers" / f"{name}.js").read_text().splitlines()
    first, _, note = first.partition(" // ")  # the note on its first line: why it looks odd
    assert "verbatim as Dodo's Segment guide gives it" in note
    assert [line.split() and "".join(line.split()) for line in formatted.splitlines()] == [
        line.split() and "".join(line.split()) for line in [first, *rest]
    ]
    assert "webhook . payload" not in formatted


def test_the_verbatim_seed_text_runs_unchanged() -> None:
    source = (EXAMPLES / "handlers" / "segment_track_payments.js").read_text()
    assert "const p = webhook . payload . data ;" in source
    assert "amount: ( p . total_amount / 100 ). toFixed ( 2 )," in source
    outcome = load_file(EXAMPLES / "handlers" / "segment_track_payments.js").run(
        event_from(sample("payment.succeeded"))
    )
    assert outcome.requests[0].payload["event"] == "Payment Completed"


def unseen_payment() -> dict[str, Any]:
    """A payment the goldens have never seen: other customer, amount, currency; no method."""
    body = sample("payment.succeeded")
    body["timestamp"] = "2026-11-02T10:00:00Z"
    body["data"].update(
        total_amount=1050,
        currency="EUR",
        payment_method=None,
        payment_id="pay_NEW1",
        customer={"customer_id": "cus_NEW", "email": "new@example.org", "name": "Noor"},
    )
    return body


def test_track_payments_seed_on_an_unseen_event() -> None:
    outcome = load_file(SHIPPED / "segment_track_payments.js").run(event_from(unseen_payment()))
    assert outcome.kind is OutcomeKind.DELIVER
    (request,) = outcome.requests
    assert (request.method, request.url) == ("POST", "https://api.segment.io/v1/track")
    assert request.payload == {
        "userId": "cus_NEW",
        "event": "Payment Completed",
        "properties": {
            "amount": "10.50",
            "currency": "EUR",
            "payment_method": "unknown",
            "payment_id": "pay_NEW1",
            "customer_email": "new@example.org",
            "customer_name": "Noor",
        },
        "timestamp": "2026-11-02T10:00:00Z",
    }
    assert outcome.warnings == ()


def test_identify_seed_on_an_unseen_event() -> None:
    outcome = load_file(SHIPPED / "segment_identify_customer.js").run(event_from(unseen_payment()))
    (request,) = outcome.requests
    assert request.url == "https://api.segment.io/v1/identify"
    assert request.payload == {
        "userId": "cus_NEW",
        "traits": {
            "email": "new@example.org",
            "name": "Noor",
            "total_spent": "10.50",
            "payment_method": "unknown",
            "last_payment_date": "2026-11-02T10:00:00Z",
            "customer_since": "2026-11-02T10:00:00Z",
        },
    }


def test_subscription_seed_on_unseen_events() -> None:
    transform = load_file(SHIPPED / "segment_subscription_lifecycle.js")
    body = sample("subscription.active")
    body["data"].update(
        recurring_pre_tax_amount=99,
        payment_frequency_interval="Year",
        customer={"customer_id": "cus_S", "email": "s@example.org", "name": "S"},
    )
    started = transform.run(event_from(body)).requests[0].payload
    assert started["event"] == "Subscription Started"
    assert started["properties"]["amount"] == "0.99"
    assert started["properties"]["frequency"] == "Year"
    body["type"] = "subscription.cancelled"
    body["data"].update(cancelled_at="2026-12-01T00:00:00Z", cancel_at_next_billing_date=True)
    cancelled = transform.run(event_from(body)).requests[0].payload
    assert cancelled["event"] == "Subscription Cancelled"
    assert cancelled["properties"]["cancelled_at"] == "2026-12-01T00:00:00Z"
    assert cancelled["properties"]["cancel_at_next_billing"] is True
    body["type"] = "subscription.renewed"
    assert transform.run(event_from(body)).kind is OutcomeKind.SKIPPED


@pytest.mark.parametrize("name", SEEDS)
def test_seed_handlers_skip_events_they_ignore(name: str) -> None:
    transform = load_file(SHIPPED / f"{name}.js")
    for event_type in (
        "refund.succeeded",
        "dispute.opened",
        "license_key.created",
        "payout.success",
    ):
        assert transform.run(event_from(sample(event_type))).kind is OutcomeKind.SKIPPED


def test_the_cancel_example_drops_test_mode_events() -> None:
    """`examples/handlers/cancel_test_mode.js` does what its name says: a payment from Dodo's
    test-mode endpoint is cancelled; the same payment from the live one is tracked."""
    handler = compiled(EXAMPLES / "handlers" / "cancel_test_mode.js")
    body = json.dumps(sample("payment.succeeded"))
    test = handler.run(Event("payment.succeeded", body, "msg_t", "test"))
    live = handler.run(Event("payment.succeeded", body, "msg_l", "live"))
    assert test.kind.value == "cancelled"
    assert live.kind.value == "deliver" and live.requests[0].payload["event"] == "Payment Completed"
