"""Backfills: a transform added later runs over the stored events it has no delivery for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dodo_transform.pipeline import backfill
from dodo_transform.pipeline.transform_stage import run_in_this_process
from dodo_transform.store import Backfill, NewEvent
from dodo_transform.store.sqlite import MemoryStore
from dodo_transform.transforms.registry import Registry

IDENTIFY = """function handler(webhook) {
  webhook.url = "https://api.segment.io/v1/identify";
  webhook.payload = { userId: webhook.payload.data.customer.customer_id, traits: {} };
  return webhook;
}
"""
DATED = IDENTIFY.replace("traits: {}", "traits: {}, timestamp: '2020-01-01T00:00:00Z'")
SLACK = IDENTIFY.replace("https://api.segment.io/v1/identify", "https://hooks.slack.com/x")


def body(kind: str, number: int) -> bytes:
    return json.dumps(
        {
            "business_id": "bus_1",
            "type": kind,
            "timestamp": f"2026-10-{number:02d}T09:00:00Z",
            "data": {"customer": {"customer_id": f"cus_{number}"}},
        }
    ).encode()


class Setup:
    """A store with some transformed events, and a transforms folder to add files to."""

    def __init__(self, tmp_path: Path) -> None:
        self.store = MemoryStore()
        self.folder = tmp_path / "transforms"
        self.folder.mkdir()
        self.registry = Registry(self.folder)

    def receive(self, *kinds: str) -> list[int]:
        """Store events of these types, transformed already (by no transform at all)."""
        start = len(self.store.list_events(1000))
        stored = self.store.add_events(
            [
                NewEvent(f"msg_{start + n}", kind, body(kind, start + n + 1))
                for n, kind in enumerate(kinds)
            ]
        )
        claimed = self.store.claim_events(len(kinds), 30)
        self.store.record_outcomes({event.id: [] for event in claimed})
        return [event_id for event_id, _ in stored]

    def add(self, name: str, source: str, toml: str = "") -> None:
        (self.folder / f"{name}.js").write_text(source)
        if toml:
            (self.folder / "transforms.toml").write_text(toml)
        self.registry.reload()

    def start(self, transform: str, types: list[str] | None = None) -> Backfill:
        backfill.check_backfillable(self.registry, transform)
        backfill_id = self.store.start_backfill(transform, types, None)
        started = self.store.get_backfill(backfill_id)
        assert started is not None
        return started

    def run_to_end(self) -> int:
        """Steps until no backfill is left; how many steps took events."""
        steps = 0
        while unfinished := self.store.unfinished_backfills():
            steps += bool(
                backfill.run_step(self.store, self.registry, unfinished[0], run_in_this_process)
            )
        return steps


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_a_new_transform_runs_once_over_old_events_dated_when_they_happened(setup: Setup) -> None:
    setup.receive("payment.succeeded", "refund.succeeded")
    setup.add("identify", IDENTIFY)
    counted = backfill.count(setup.store, setup.registry, "identify", None, None)
    assert counted == {"payment.succeeded": 1, "refund.succeeded": 1}
    setup.start("identify")
    setup.run_to_end()
    made = sorted(setup.store.list_deliveries(transform="identify"), key=lambda d: d.event_id)
    assert [d.status for d in made] == ["pending", "pending"]
    assert [d.request.payload["timestamp"] for d in made if d.request] == [
        "2026-10-01T09:00:00Z",
        "2026-10-02T09:00:00Z",
    ]
    # Done: nothing is left, and a second backfill finds nothing to do.
    assert backfill.count(setup.store, setup.registry, "identify", None, None) == {}
    (finished,) = setup.store.list_backfills()
    assert finished.done_at is not None and finished.ran == 2 and finished.error is None


def test_a_handlers_own_timestamp_and_other_destinations_are_left_alone(setup: Setup) -> None:
    setup.receive("payment.succeeded")
    setup.add("dated", DATED)
    setup.add("slack", SLACK)
    for name in ("dated", "slack"):
        setup.start(name)
    setup.run_to_end()
    (dated,) = setup.store.list_deliveries(transform="dated")
    assert (
        dated.request is not None and dated.request.payload["timestamp"] == "2020-01-01T00:00:00Z"
    )
    (slack,) = setup.store.list_deliveries(transform="slack")
    assert slack.request is not None and "timestamp" not in slack.request.payload


def test_only_the_types_asked_for_and_received_by_the_transform_are_run(setup: Setup) -> None:
    setup.receive("payment.succeeded", "payment.failed", "refund.succeeded", "dispute.opened")
    setup.add("payments", IDENTIFY, '[payments]\nevents = ["payment.*", "dispute.opened"]\n')
    assert backfill.count(setup.store, setup.registry, "payments", None, None) == {
        "dispute.opened": 1,
        "payment.failed": 1,
        "payment.succeeded": 1,
    }
    assert backfill.count(
        setup.store, setup.registry, "payments", ["payment.failed", "refund.succeeded"], None
    ) == {"payment.failed": 1}
    setup.start("payments", ["payment.failed", "refund.succeeded"])
    setup.run_to_end()
    assert [d.event_type for d in setup.store.list_deliveries(transform="payments")] == [
        "payment.failed"
    ]


def test_a_backfill_goes_on_from_its_cursor_and_leaves_later_events_to_the_pipeline(
    setup: Setup,
) -> None:
    setup.receive(*["payment.succeeded"] * (backfill.STEP_EVENTS + 5))
    setup.add("identify", IDENTIFY)
    started = setup.start("identify")
    taken = backfill.run_step(setup.store, setup.registry, started, run_in_this_process)
    assert taken == backfill.STEP_EVENTS
    # As a restarted worker would: read the backfill again, go on from its cursor.
    (resumed,) = setup.store.unfinished_backfills()
    assert resumed.cursor > 0 and resumed.ran == backfill.STEP_EVENTS
    setup.receive("payment.succeeded")  # came after the start: not the backfill's
    assert setup.run_to_end() == 1
    assert len(setup.store.list_deliveries(transform="identify")) == backfill.STEP_EVENTS + 5


def test_a_backfill_whose_transform_is_removed_stops_saying_why(setup: Setup) -> None:
    setup.receive("payment.succeeded")
    setup.add("identify", IDENTIFY)
    setup.start("identify")
    (setup.folder / "identify.js").unlink()
    setup.registry.reload()
    setup.run_to_end()
    (stopped,) = setup.store.list_backfills()
    assert stopped.error is not None and "no longer loaded" in stopped.error
    assert setup.store.list_deliveries(transform="identify") == []


def test_a_backfill_needs_a_loaded_enabled_transform(setup: Setup) -> None:
    setup.add("identify", IDENTIFY)
    with pytest.raises(
        backfill.UnknownTransform, match=r"no transform idenitfy \(loaded: identify"
    ):
        backfill.check_backfillable(setup.registry, "idenitfy")
    setup.add("broken", "function handler(w) {")
    with pytest.raises(backfill.BackfillError, match="broken does not load"):
        backfill.check_backfillable(setup.registry, "broken")
    setup.add("off", IDENTIFY, "[off]\nenabled = false\n")
    with pytest.raises(backfill.BackfillError, match="off is disabled"):
        backfill.check_backfillable(setup.registry, "off")


def test_an_event_without_a_timestamp_is_dated_when_it_was_received(tmp_path: Path) -> None:
    store = MemoryStore(clock=lambda: 1_800_000_000.0)
    store.add_events([NewEvent("msg_x", "payment.succeeded", b'{"type": "payment.succeeded"}')])
    (claimed,) = store.claim_events(1, 30)
    assert backfill.event_time(claimed) == "2027-01-15T08:00:00Z"
