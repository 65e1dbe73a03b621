"""The store's behaviour, as the pipeline relies on it. Any `Store` must pass these."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dodo_transform.errors import StorageError
from dodo_transform.store.sqlite import (
    Attempt,
    DeliveryUpdate,
    NewDelivery,
    NewEvent,
    SqliteStore,
    Store,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite"])
def open_store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> Iterator[Callable[[], Store]]:
    opened: list[Store] = []

    def make() -> Store:
        store = SqliteStore(tmp_path / "store.db", clock=clock)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[[], Store]) -> Store:
    return open_store()


def add(
    store: Store, webhook_id: str, event_type: str = "a", body: bytes = b"{}"
) -> tuple[int, bool]:
    (result,) = store.add_events([NewEvent(webhook_id, event_type, body)])
    return result


def pending(transform: str = "t", index: int = 0) -> NewDelivery:
    request = {
        "method": "POST",
        "url": "https://api.segment.io/v1/track",
        "headers": {},
        "payload": {},
    }
    return NewDelivery(transform, "v1", index, "pending", request=request)


def test_a_webhook_id_is_stored_once(store: Store) -> None:
    first = add(store, "msg_1", "payment.succeeded", b"{}")
    again = add(store, "msg_1", "payment.succeeded", b"{}")
    assert first == (first[0], True)
    assert again == (first[0], False)
    assert [e.webhook_id for e in store.list_events()] == ["msg_1"]


def test_claimed_events_are_leased_and_come_back_when_the_lease_ends(
    store: Store, clock: Clock
) -> None:
    add(store, "msg_1", "a", b"1")
    add(store, "msg_2", "b", b"2")
    assert [e.webhook_id for e in store.claim_events(10, 60)] == ["msg_1", "msg_2"]
    assert store.claim_events(10, 60) == []
    clock.now += 61
    assert len(store.claim_events(10, 60)) == 2


def test_recording_outcomes_finishes_the_event(store: Store) -> None:
    event_id, _ = add(store, "msg_1", "a", b"{}")
    store.claim_events(10, 60)
    store.record_outcomes(
        {event_id: [pending("t", 0), pending("t", 1), NewDelivery("u", "v", 0, "skipped")]}
    )
    assert store.pending_events() == 0
    assert store.counts() == {"pending": 2, "skipped": 1}


def test_due_deliveries_are_claimed_once_and_retries_wait(store: Store, clock: Clock) -> None:
    event_id, _ = add(store, "msg_1", "a", b"{}")
    store.record_outcomes({event_id: [pending()]})
    (delivery,) = store.claim_deliveries(10, 60)
    assert delivery.webhook_id == "msg_1" and delivery.request is not None
    assert store.claim_deliveries(10, 60) == []
    store.record_results(
        [
            DeliveryUpdate(
                delivery.id,
                "pending",
                Attempt(clock.now, 503, "HTTP 503", 5.0),
                "HTTP 503",
                clock.now + 30,
            )
        ]
    )
    assert store.claim_deliveries(10, 60) == []
    clock.now += 31
    (again,) = store.claim_deliveries(10, 60)
    assert again.attempts == 1
    store.record_results(
        [DeliveryUpdate(again.id, "delivered", Attempt(clock.now, 200, None, 3.0))]
    )
    assert [a.status_code for a in store.attempts(again.id)] == [503, 200]
    assert store.get_delivery(again.id).status == "delivered"  # type: ignore[union-attr]


def test_a_restart_releases_every_lease(open_store: Callable[[], Store]) -> None:
    store = open_store()
    event_id, _ = add(store, "msg_1", "a", b"{}")
    add(store, "msg_2", "a", b"{}")
    store.record_outcomes({event_id: [pending()]})
    assert store.claim_deliveries(10, 3600) and store.claim_events(10, 3600)
    store.close()
    reopened = open_store()
    assert len(reopened.claim_deliveries(10, 60)) == 1
    assert [e.webhook_id for e in reopened.claim_events(10, 60)] == ["msg_2"]


def test_replace_outcomes_supersedes_failed_ones(store: Store) -> None:
    event_id, _ = add(store, "msg_1", "a", b"{}")
    store.record_outcomes(
        {
            event_id: [
                NewDelivery("t", "v1", 0, "failed", error="boom"),
                NewDelivery("u", "v1", 0, "skipped"),
            ]
        }
    )
    store.replace_outcomes(event_id, "t", [pending("t")])
    statuses = {
        (d.transform, d.generation, d.status) for d in store.list_deliveries(event_id=event_id)
    }
    assert statuses == {("t", 0, "replayed"), ("t", 1, "pending"), ("u", 0, "skipped")}


def test_dry_run_can_record_the_request_it_did_not_send(store: Store) -> None:
    event_id, _ = add(store, "msg_1", "a", b"{}")
    store.record_outcomes({event_id: [pending()]})
    (delivery,) = store.claim_deliveries(1, 60)
    exact = {
        "method": "POST",
        "url": "http://x/v1/track",
        "headers": {"Authorization": "Basic k"},
        "payload": {"a": 1},
    }
    store.record_results([DeliveryUpdate(delivery.id, "dry_run", request=exact)])
    stored = store.get_delivery(delivery.id)
    assert stored is not None and stored.request == exact
    assert stored.to_json()["request"]["headers"] == {"Authorization": "[redacted]"}


def test_prune_removes_old_settled_events_only(store: Store, clock: Clock) -> None:
    old, _ = add(store, "msg_old", "a", b"{}")
    store.record_outcomes({old: [NewDelivery("t", "v", 0, "delivered")]})
    waiting, _ = add(store, "msg_waiting", "a", b"{}")
    store.record_outcomes({waiting: [pending()]})
    clock.now += 15 * 86400
    add(store, "msg_new", "a", b"{}")
    assert store.prune(clock.now - 14 * 86400) == 1
    assert sorted(e.webhook_id for e in store.list_events()) == ["msg_new", "msg_waiting"]
    assert store.list_deliveries(event_id=old) == []


def test_store_errors_are_storage_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StorageError, match="cannot open the store"):
        SqliteStore(blocker / "sub" / "store.db")
    store = SqliteStore(tmp_path / "ok.db")
    store.close()
    with pytest.raises(StorageError):
        add(store, "msg_1", "a", b"{}")


def test_a_group_of_events_is_stored_in_one_call_with_duplicates_resolved(store: Store) -> None:
    events = [NewEvent(f"msg_{n % 3}", "a", b"{}") for n in range(6)]
    results = store.add_events(events)
    assert [created for _, created in results] == [True, True, True, False, False, False]
    assert [event_id for event_id, _ in results[3:]] == [event_id for event_id, _ in results[:3]]
