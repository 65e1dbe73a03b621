"""Erasing a customer and keeping events per status (store/erasure.py, `Store.prune`), on both
stores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from dodo_transform.errors import ConfigError
from dodo_transform.outgoing import OutgoingRequest
from dodo_transform.pipeline.assembly import retention_by_status
from dodo_transform.settings import Settings
from dodo_transform.store import (
    Attempt,
    DeliveryStatus,
    DeliveryUpdate,
    Filters,
    NewDelivery,
    NewEvent,
    ReplayMode,
    Store,
    erasure,
)
from dodo_transform.store.postgres import PostgresStore
from dodo_transform.store.sqlite import SqliteStore
from tests.command_line import run
from tests.conftest import sample
from tests.postgres import fresh_database

DAY = 86400.0


class Clock:
    now = 100 * DAY

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[Store]:
    with ExitStack() as cleanup:
        opened: Store
        if request.param == "postgres":
            url = cleanup.enter_context(fresh_database())
            opened = PostgresStore(url, owner="test", clock=clock)
        else:
            opened = SqliteStore(tmp_path / "store.db", clock=clock)
        cleanup.callback(opened.close)
        yield opened


def body(customer: str | None, email: str | None, **data: Any) -> bytes:
    event = sample("payment.succeeded")
    event["data"]["customer"] = {"customer_id": customer, "email": email, "name": "Someone"}
    event["data"] |= data
    return json.dumps(event).encode()


def stored(store: Store, *bodies: bytes) -> list[int]:
    added = store.add_events(
        [NewEvent(f"msg_{n}", "payment.succeeded", b) for n, b in enumerate(bodies)]
    )
    ids = [event_id for event_id, _ in added]
    request = OutgoingRequest("POST", "https://hooks.example/in", {}, {"copy": "x"})
    store.record_outcomes(
        {event_id: [NewDelivery("t", "v1", 0, DeliveryStatus.PENDING, request)] for event_id in ids}
    )
    for delivery in store.list_deliveries(None, 1000):
        attempt = Attempt(1.0, 200, None, 1.0)
        store.record_results([DeliveryUpdate(delivery.id, DeliveryStatus.DELIVERED, attempt)])
    return ids


def test_a_customer_is_found_by_email_then_by_the_id_their_events_carry(store: Store) -> None:
    ann_paid, ann_no_email, _bob, bob_mentions_ann = stored(
        store,
        body("cus_ann", "Ann@Example.com"),
        body("cus_ann", None),  # only the id: found through the first event's customer id
        body("cus_bob", "bob@example.com"),
        body("cus_bob", "bob@example.com", metadata={"note": "referred by Ann@Example.com"}),
    )
    found = erasure.find(store, "ann@example.com")
    assert found.event_ids == [ann_paid, ann_no_email, bob_mentions_ann]
    # An event about Bob that mentions Ann is erased (it names her), but Bob is not followed.
    assert "cus_bob" not in found.identifiers and "cus_ann" in found.identifiers
    assert store.count_deliveries_of(found.event_ids) == 3


def test_erasing_deletes_the_events_with_their_deliveries_attempts_and_terms(
    store: Store,
) -> None:
    ann, bob = stored(store, body("cus_ann", "ann@example.com"), body("cus_bob", "b@x.io"))
    (ann_delivery,) = store.list_deliveries(None, 10, ann)
    searched = store.start_bulk_replay(Filters(q="ANN@example.com"), ReplayMode.TRANSFORM)
    found = erasure.find(store, "cus_ann")
    erased = store.erase_events(found.event_ids, found.identifiers)
    assert (erased.events, erased.deliveries) == (1, 1)
    bulk = store.get_bulk_replay(searched)
    assert bulk is not None and bulk.filters == {"q": "(erased)"}
    assert store.get_event(ann) is None and store.get_delivery(ann_delivery.id) is None
    assert store.attempts(ann_delivery.id) == []
    assert store.list_events(filters=Filters(q="ann@example.com")) == []
    assert store.get_event(bob) is not None
    assert erasure.find(store, "cus_ann").event_ids == []


@pytest.mark.parametrize("who", ["", "  ", "two words", "x" * 201])
def test_an_erasure_needs_one_id_or_email(who: str) -> None:
    with pytest.raises(erasure.ErasureError, match="customer: "):
        erasure.identifier(who)


def test_events_are_kept_per_the_status_of_their_deliveries(store: Store, clock: Clock) -> None:
    old = stored(store, body("cus_1", "a@x.io"), body("cus_2", "b@x.io"))
    dead = store.list_deliveries(None, 10, old[1])[0]
    store.record_results([DeliveryUpdate(dead.id, DeliveryStatus.DEAD)])
    clock.now += 20 * DAY
    by_status = {
        DeliveryStatus.DELIVERED: clock.now - 7 * DAY,
        DeliveryStatus.DEAD: clock.now - 90 * DAY,
    }
    # Default 14 days; delivered 7, dead 90: the delivered one goes, the dead one stays.
    assert store.prune(clock.now - 14 * DAY, by_status) == 1
    assert store.get_event(old[0]) is None and store.get_event(old[1]) is not None
    clock.now += 71 * DAY
    by_status = {
        DeliveryStatus.DELIVERED: clock.now - 7 * DAY,
        DeliveryStatus.DEAD: clock.now - 90 * DAY,
    }
    assert store.prune(clock.now - 14 * DAY, by_status) == 1


def test_retention_per_status_is_read_from_the_settings_and_checked() -> None:
    settings = Settings(retention_by_status="delivered=14, DEAD=90")  # type: ignore[arg-type]
    assert settings.retention_by_status == {"delivered": 14, "dead": 90}
    assert retention_by_status(settings.retention_by_status) == {
        DeliveryStatus.DELIVERED: 14,
        DeliveryStatus.DEAD: 90,
    }
    with pytest.raises(ConfigError, match="delivred is not a status"):
        retention_by_status({"delivred": 3})
    with pytest.raises(ValueError, match="give STATUS=DAYS"):
        Settings(retention_by_status="delivered:14")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="days must be at least 1"):
        Settings(retention_by_status="dead=0")  # type: ignore[arg-type]


def test_a_misspelt_status_in_the_retention_stops_serve_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "transforms").mkdir()
    ran = run(
        "serve",
        "--transforms",
        tmp_path / "transforms",
        "--data-dir",
        tmp_path / "data",
        env={"DODO_TRANSFORM_RETENTION_BY_STATUS": "delivred=7"},
    )
    assert ran.returncode == 2
    assert "DODO_TRANSFORM_RETENTION_BY_STATUS: delivred is not a status" in ran.stderr
