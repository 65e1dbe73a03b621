"""The intake's group commit: concurrent events share one transaction, a failed group fails
only its own requests, closing commits what waits and refuses what comes after, and the
worker's SQLite writes wait while the intake has events to store."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from dodo_transform.errors import StorageError
from dodo_transform.store import NewEvent, sqlite
from dodo_transform.store.intake import Intake
from dodo_transform.store.sqlite import SqliteStore


class GatedStore:
    """A store whose first `add_events` waits for `gate`, so later events pile up behind it;
    it records each group it is given, and fails groups holding a webhook-id in `failing`."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.groups: list[list[str]] = []
        self.failing: dict[str, Exception] = {}
        self.prioritised = False
        self.prioritised_groups: list[bool] = []  # whether each group was stored first in line

    @contextmanager
    def priority(self) -> Iterator[None]:
        self.prioritised = True
        try:
            yield
        finally:
            self.prioritised = False

    def add_events(self, events: Sequence[NewEvent]) -> list[tuple[int, bool]]:
        ids = [event.webhook_id for event in events]
        self.prioritised_groups.append(self.prioritised)
        self.groups.append(ids)
        self.entered.set()
        self.gate.wait(10)
        for webhook_id in ids:
            if webhook_id in self.failing:
                raise self.failing[webhook_id]
        return [(int(webhook_id.removeprefix("msg_")), True) for webhook_id in ids]


def event(n: int) -> NewEvent:
    return NewEvent(f"msg_{n}", "payment.succeeded", b"{}")


async def add_all(intake: Intake, store: GatedStore, first: int, more: int) -> list[object]:
    """Add event `first`; once the store is committing it, add `more` others; open the gate."""
    leader = asyncio.ensure_future(intake.add(event(first)))
    await asyncio.to_thread(store.entered.wait, 10)
    followers = [asyncio.ensure_future(intake.add(event(n))) for n in range(1, more + 1)]
    await asyncio.sleep(0.05)  # they are all waiting now
    store.gate.set()
    return await asyncio.gather(leader, *followers, return_exceptions=True)


def test_events_arriving_during_a_commit_share_the_next_one() -> None:
    store = GatedStore()
    intake = Intake(store)  # type: ignore[arg-type]
    try:
        results = asyncio.run(add_all(intake, store, 100, 20))
    finally:
        intake.close()
    assert results == [(100, True)] + [(n, True) for n in range(1, 21)]
    assert store.groups == [["msg_100"], [f"msg_{n}" for n in range(1, 21)]]
    # A lone event is committed as it comes; a burst's group goes first in line, until done.
    assert store.prioritised_groups == [False, True] and not store.prioritised


@pytest.mark.parametrize(
    "failure",
    [StorageError("disk full"), RuntimeError("a bug in the store")],
    ids=["storage", "bug"],
)
def test_a_failed_group_fails_its_own_requests_and_the_writer_goes_on(failure: Exception) -> None:
    store = GatedStore()
    store.failing["msg_3"] = failure
    intake = Intake(store)  # type: ignore[arg-type]
    try:
        results = asyncio.run(add_all(intake, store, 100, 5))
        assert results[0] == (100, True)
        assert all(isinstance(result, StorageError) for result in results[1:])
        assert asyncio.run(intake.add(event(7))) == (7, True)  # the writer still runs
    finally:
        intake.close()


def test_closing_commits_what_waits_and_refuses_later_events(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db.sqlite")
    intake = Intake(store)

    async def scenario() -> list[tuple[int, bool]]:
        adds = [asyncio.ensure_future(intake.add(event(n))) for n in range(50)]
        await asyncio.sleep(0)  # every add is waiting
        await asyncio.to_thread(intake.close)
        return await asyncio.gather(*adds)

    try:
        results = asyncio.run(scenario())
        assert sorted(created for _, created in results) == [True] * 50
        with pytest.raises(StorageError, match="closed"):
            asyncio.run(intake.add(event(99)))
        assert store.pending_events() == 50
    finally:
        store.close()


def test_an_intake_whose_store_closed_first_still_stops_cleanly(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db.sqlite")
    intake = Intake(store)
    store.close()
    intake.close()  # the writer takes priority on a closed store: no lock, no crash
    with pytest.raises(StorageError):
        asyncio.run(intake.add(event(1)))


def test_a_redelivered_webhook_id_in_the_same_group_is_stored_once(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db.sqlite")
    intake = Intake(store)

    async def twice() -> list[tuple[int, bool]]:
        return await asyncio.gather(intake.add(event(1)), intake.add(event(1)))

    try:
        first, second = asyncio.run(twice())
    finally:
        intake.close()
        store.close()
    assert first[0] == second[0]
    assert sorted([first[1], second[1]]) == [False, True]


def test_events_from_several_event_loops_are_each_answered_on_their_own() -> None:
    store = GatedStore()
    store.gate.set()
    intake = Intake(store)  # type: ignore[arg-type]
    answers: dict[int, object] = {}

    def in_a_thread(n: int) -> None:
        answers[n] = asyncio.run(intake.add(event(n)))

    threads = [threading.Thread(target=in_a_thread, args=(n,)) for n in range(1, 9)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    finally:
        intake.close()
    assert answers == {n: (n, True) for n in range(1, 9)}


def timed_write(store: SqliteStore) -> float:
    started = time.monotonic()
    store.request_replays([])
    return time.monotonic() - started


def test_the_workers_writes_wait_while_the_intake_has_events_to_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite, "YIELD_SECONDS", 0.6)
    http = SqliteStore(tmp_path / "db.sqlite")
    worker = SqliteStore(tmp_path / "db.sqlite", durable=False)

    def hold_priority(seconds: float) -> None:
        with http.priority():
            holding.set()
            time.sleep(seconds)

    try:
        assert timed_write(worker) < 0.3  # nobody ingesting: no wait
        with http.priority():
            assert timed_write(worker) >= 0.6  # waits it out, then writes anyway
            assert timed_write(http) < 0.3  # the intake's own store never waits
        holding = threading.Event()
        holder = threading.Thread(target=hold_priority, args=(0.2,))
        holder.start()
        holding.wait(5)
        assert 0.1 < timed_write(worker) < 0.5  # in as soon as the intake is done
        holder.join()
    finally:
        worker.close()
        http.close()
