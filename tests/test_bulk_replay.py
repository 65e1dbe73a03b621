"""Bulk replays in the store and the pipeline's step (pipeline/bulk_replay.py), on both stores."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from dodo_transform.outgoing import OutgoingRequest
from dodo_transform.pipeline import bulk_replay
from dodo_transform.store import (
    DeliveryStatus,
    Filters,
    NewDelivery,
    NewEvent,
    ReplayMode,
    Store,
)
from dodo_transform.store.postgres import PostgresStore
from dodo_transform.store.sqlite import SqliteStore
from tests.postgres import fresh_database


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with ExitStack() as cleanup:
        opened: Store
        if request.param == "postgres":
            url = cleanup.enter_context(fresh_database())
            opened = PostgresStore(url, owner="test", clock=lambda: 1000.0)
        else:
            opened = SqliteStore(tmp_path / "store.db", clock=lambda: 1000.0)
        cleanup.callback(opened.close)
        yield opened


def request_to(n: int) -> OutgoingRequest:
    return OutgoingRequest("POST", "https://hooks.example/in", {"X-N": str(n)}, {"n": n, "é": "ü"})


def with_deliveries(store: Store, statuses: list[DeliveryStatus]) -> list[int]:
    """One event per status, each with one delivery of transform `t` in that status."""
    added = store.add_events(
        [NewEvent(f"msg_{n}", "payment.succeeded", b"{}") for n in range(len(statuses))]
    )
    store.record_outcomes(
        {
            event_id: [NewDelivery("t", "v1", 0, status, request_to(n))]
            for n, ((event_id, _), status) in enumerate(zip(added, statuses, strict=True))
        }
    )
    return [d.id for d in reversed(store.list_deliveries(None, 1000))]


def test_a_bulk_replay_covers_the_replayable_deliveries_chosen_when_it_starts(
    store: Store,
) -> None:
    dead, delivered, failed = DeliveryStatus.DEAD, DeliveryStatus.DELIVERED, DeliveryStatus.FAILED
    ids = with_deliveries(store, [dead, delivered, failed, dead])
    assert bulk_replay.count(store, Filters()) == 3
    assert bulk_replay.count(store, Filters(status=dead)) == 2
    assert bulk_replay.count(store, Filters(status=delivered)) == 0
    bulk_id = store.start_bulk_replay(Filters(status=dead), ReplayMode.ORIGINAL)
    with_deliveries(store, [dead])  # later: not this replay's
    bulk = store.get_bulk_replay(bulk_id)
    assert bulk is not None
    assert (bulk.total, bulk.last_delivery_id, bulk.state) == (2, ids[-1], "running")
    assert bulk.filters == {"status": "dead"} and bulk.mode is ReplayMode.ORIGINAL
    taken = store.replayable_deliveries(
        Filters.from_json(dict(bulk.filters)), up_to=bulk.last_delivery_id
    )
    assert [d.id for d in taken] == [ids[0], ids[3]]
    assert store.unfinished_bulk_replays() == [bulk]


def test_a_status_that_is_never_replayed_is_refused() -> None:
    with pytest.raises(bulk_replay.BulkReplayError, match="only failed, dead"):
        bulk_replay.check_filters(Filters(status=DeliveryStatus.DELIVERED))


def test_original_mode_resends_the_stored_request_as_a_new_pending_delivery(
    store: Store,
) -> None:
    (dead,) = with_deliveries(store, [DeliveryStatus.DEAD])
    before = store.get_delivery(dead)
    assert store.resend_original(dead)
    assert not store.resend_original(dead)  # replayed now
    old = store.get_delivery(dead)
    assert old is not None and old.status is DeliveryStatus.REPLAYED
    (copy,) = store.list_deliveries(DeliveryStatus.PENDING)
    assert before is not None and copy.request == before.request
    assert (copy.generation, copy.index, copy.destination) == (1, 0, "https://hooks.example")


def test_a_step_replays_at_most_its_limit_and_moves_the_cursor(store: Store) -> None:
    ids = with_deliveries(store, [DeliveryStatus.DEAD] * 5)
    bulk_id = store.start_bulk_replay(Filters(), ReplayMode.ORIGINAL)

    def step() -> int:
        bulk = store.get_bulk_replay(bulk_id)
        assert bulk is not None
        return bulk_replay.run_step(store, None, bulk, _no_runs, limit=2)  # type: ignore[arg-type]

    assert step() == 2
    bulk = store.get_bulk_replay(bulk_id)
    assert bulk is not None and (bulk.cursor, bulk.done, bulk.replayed) == (ids[1], 2, 2)
    assert store.cancel_bulk_replay(bulk_id)
    assert not store.cancel_bulk_replay(bulk_id)  # it has ended
    assert step() == 0  # cancelled: nothing more is taken
    left = store.list_deliveries(DeliveryStatus.DEAD)
    assert sorted(d.id for d in left) == ids[2:]
    cancelled = store.get_bulk_replay(bulk_id)
    assert cancelled is not None and cancelled.state == "cancelled" and cancelled.done == 2


def test_a_step_past_the_last_delivery_finishes_the_bulk_replay(store: Store) -> None:
    with_deliveries(store, [DeliveryStatus.DEAD])
    bulk_id = store.start_bulk_replay(Filters(), ReplayMode.ORIGINAL)
    for _ in range(2):
        bulk = store.get_bulk_replay(bulk_id)
        assert bulk is not None
        bulk_replay.run_step(store, None, bulk, _no_runs, limit=10)  # type: ignore[arg-type]
    done = store.get_bulk_replay(bulk_id)
    assert done is not None and (done.state, done.done, done.replayed) == ("done", 1, 1)
    assert store.unfinished_bulk_replays() == []


def _no_runs(_: object) -> list[object]:
    raise AssertionError("original mode runs no transform")
