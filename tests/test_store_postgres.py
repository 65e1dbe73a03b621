"""What several instances sharing one PostgreSQL database rely on, beyond `tests/test_store.py`:
claims that never overlap, leases that belong to their owner, dedupe across instances, a schema
migrated once, wake-ups through LISTEN/NOTIFY, and errors mapped to `StorageError`."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from dodo_transform.errors import StorageError
from dodo_transform.settings import load_settings
from dodo_transform.store import DeliveryStatus, NewDelivery, NewEvent, instance_id, open_store
from dodo_transform.store.migrations import MIGRATION_LOCK, POSTGRES
from dodo_transform.store.postgres import PRUNE_LOCK, PostgresStore, shown
from tests.postgres import fresh_database
from tests.test_store import claim_all


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def url() -> Iterator[str]:
    with fresh_database() as database:
        yield database


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def instances(url: str, clock: Clock) -> Iterator[Callable[[str], PostgresStore]]:
    """Opens the store as instance `name` (several may be open at once)."""
    opened: list[PostgresStore] = []

    def make(name: str, **options: bool) -> PostgresStore:
        store = PostgresStore(url, owner=name, clock=clock, **options)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def add_many(store: PostgresStore, count: int, prefix: str = "msg") -> list[int]:
    return [
        i
        for i, _ in store.add_events([NewEvent(f"{prefix}_{n}", "a", b"{}") for n in range(count)])
    ]


def test_instances_claiming_at_once_take_different_events(
    instances: Callable[[str], PostgresStore],
) -> None:
    stores = [instances(f"instance-{n}") for n in range(3)]
    ids = add_many(stores[0], 300)
    start = threading.Barrier(3)

    def claim_all(store: PostgresStore) -> list[int]:
        start.wait()
        taken: list[int] = []
        while batch := store.claim_events(7, 60):
            taken += [event.id for event in batch]
        return taken

    with ThreadPoolExecutor(3) as pool:
        taken = list(pool.map(claim_all, stores))
    everything = [event_id for claimed in taken for event_id in claimed]
    assert sorted(everything) == sorted(ids)  # each event once, none left behind


def test_one_webhook_id_posted_to_two_instances_at_once_is_one_event(
    instances: Callable[[str], PostgresStore],
) -> None:
    a, b = instances("a"), instances("b")
    for n in range(20):
        event = NewEvent(f"msg_race_{n}", "a", b"{}")
        start = threading.Barrier(2)

        def store(
            on: PostgresStore, event: NewEvent = event, start: threading.Barrier = start
        ) -> tuple[int, bool]:
            start.wait()
            (result,) = on.add_events([event])
            return result

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(store, (a, b)))
        assert sorted(created for _, created in results) == [False, True]
        assert results[0][0] == results[1][0]
    assert len(a.list_events(1000)) == 20


def test_a_starting_instance_leaves_the_live_leases_of_others_alone(
    instances: Callable[..., PostgresStore], clock: Clock
) -> None:
    first = instances("first")
    event_id, _ = first.add_events([NewEvent("msg_1", "a", b"{}")])[0]
    first.add_events([NewEvent("msg_2", "a", b"{}")])
    first.record_outcomes({event_id: [NewDelivery("t", "v", 0, DeliveryStatus.PENDING)]})
    assert first.claim_events(10, 60) and claim_all(first, 10, 60)
    second = instances("second", claims_work=True)
    assert second.claim_events(10, 60) == [] and claim_all(second, 10, 60) == []
    second.release([d.id for d in second.list_deliveries()])  # not its own: nothing happens
    assert claim_all(second, 10, 60) == []
    clock.now += 61  # the first instance died: nothing renewed its leases
    assert len(second.claim_events(10, 60)) == 1 and len(claim_all(second, 10, 60)) == 1


def test_an_instance_renews_only_its_own_leases(
    instances: Callable[[str], PostgresStore], clock: Clock
) -> None:
    alive, dead = instances("alive"), instances("dead")
    add_many(alive, 4)
    assert len(alive.claim_events(2, 10)) == 2 and len(dead.claim_events(2, 10)) == 2
    for _ in range(3):
        clock.now += 8
        assert alive.renew(10) == 2
    taker = instances("taker")
    assert len(taker.claim_events(10, 10)) == 2  # the dead one's, not the live one's


def test_a_restarted_instance_takes_back_its_own_leases_at_once(
    instances: Callable[..., PostgresStore],
) -> None:
    before = instances("same")
    add_many(before, 2)
    assert len(before.claim_events(10, 3600)) == 2
    before.close()
    after = instances("same", claims_work=True)
    assert len(after.claim_events(10, 60)) == 2


def test_instances_starting_together_migrate_once(url: str) -> None:
    start = threading.Barrier(3)

    def open_one(n: int) -> None:
        start.wait()
        PostgresStore(url, owner=f"i{n}").close()

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(open_one, range(3)))
    with psycopg.connect(url) as db:
        rows = db.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    assert [version for (version,) in rows] == [m.version for m in POSTGRES]


def test_migrations_wait_for_the_instance_that_holds_the_lock(url: str) -> None:
    with psycopg.connect(url) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        opened: list[PostgresStore] = []
        thread = threading.Thread(target=lambda: opened.append(PostgresStore(url, owner="x")))
        thread.start()
        time.sleep(0.5)
        assert not opened  # waiting on the lock
        holder.commit()
        thread.join(10)
    assert opened
    opened[0].close()


def test_a_database_from_a_newer_release_is_refused(url: str) -> None:
    PostgresStore(url, owner="x").close()
    with psycopg.connect(url) as db:
        db.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (%s, 'future')",
            (len(POSTGRES) + 1,),
        )
    with pytest.raises(StorageError, match="newer than this release"):
        PostgresStore(url, owner="x")


def test_a_listener_hears_events_stored_by_another_instance(
    instances: Callable[[str], PostgresStore],
) -> None:
    """Each wake says whether it brings only new events (the pipeline then wakes only its
    transform loop: ingest's wakes come many a second in a burst) or other work."""
    worker, ingest = instances("worker"), instances("ingest")
    woken: queue.Queue[bool] = queue.Queue()
    stop = worker.listen(woken.put)
    try:
        assert woken.get(timeout=5) is False  # every listener's wake when it (re)connects
        ingest.add_events([NewEvent("msg_1", "a", b"{}")])
        assert woken.get(timeout=5) is True
        ingest.add_events([NewEvent("msg_1", "a", b"{}")])  # a duplicate is no new work
        event_id = ingest.list_events()[0].id
        ingest.record_outcomes({event_id: [NewDelivery("t", "v", 0, DeliveryStatus.FAILED)]})
        with pytest.raises(queue.Empty):
            woken.get(timeout=1)
        ingest.request_replays([d.id for d in ingest.list_deliveries()])
        assert woken.get(timeout=5) is False
    finally:
        stop()


def test_only_one_instance_prunes_at_a_time(
    instances: Callable[[str], PostgresStore], url: str, clock: Clock
) -> None:
    store = instances("a")
    (event_id,) = add_many(store, 1)
    store.record_outcomes({event_id: []})
    clock.now += 30 * 86400
    with psycopg.connect(url) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s)", (PRUNE_LOCK,))
        assert store.prune(clock.now - 86400) == 0  # another instance is at it
    assert store.prune(clock.now - 86400) == 1


def test_the_worker_commits_without_waiting_for_the_disk(
    instances: Callable[..., PostgresStore],
) -> None:
    assert instances("ingest")._read("SHOW synchronous_commit") == [("on",)]
    assert instances("worker", durable=False)._read("SHOW synchronous_commit") == [("off",)]


def test_an_unreachable_server_is_a_storage_error_without_the_password() -> None:
    with pytest.raises(StorageError, match="cannot open the store") as raised:
        PostgresStore("postgresql://root:hunter2@127.0.0.1:1/nowhere", owner="x")
    assert "hunter2" not in str(raised.value) and ":***@" in str(raised.value)
    assert shown("postgresql://u@h/db") == "postgresql://u@h/db"


def test_a_closed_store_raises_storage_errors(instances: Callable[[str], PostgresStore]) -> None:
    store = instances("a")
    store.close()
    with pytest.raises(StorageError):
        store.add_events([NewEvent("msg_1", "a", b"{}")])
    with pytest.raises(StorageError):
        store.ping()


def test_a_database_error_in_a_call_is_a_storage_error(
    instances: Callable[[str], PostgresStore], url: str
) -> None:
    store = instances("a")
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("DROP TABLE attempts")
    with pytest.raises(StorageError, match="store read failed"):
        store.attempts(1)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_open_store_picks_postgres_by_scheme(url: str, scheme: str, tmp_path: Path) -> None:
    settings = load_settings(database_url=url.replace("postgresql", scheme, 1), data_dir=tmp_path)
    store = open_store(settings)
    try:
        assert isinstance(store, PostgresStore)
        assert store.owner == instance_id(settings)
        assert str(tmp_path.resolve()) in store.owner
    finally:
        store.close()


def test_a_nul_character_in_text_fails_no_write(instances: Callable[[str], PostgresStore]) -> None:
    """PostgreSQL text cannot hold NUL: it is stored as U+FFFD, and the rest of the group too."""
    store = instances("a")
    body = b'{"type": "a\\u0000b"}'
    (first, created), _ = store.add_events(
        [NewEvent("msg_\x00", "a\x00b", body), NewEvent("msg_2", "a", b"{}")]
    )
    assert created and store.add_events([NewEvent("msg_\x00", "a", b"{}")]) == [(first, False)]
    store.record_outcomes(
        {first: [NewDelivery("t\x00", "v", 0, DeliveryStatus.FAILED, error="\x00")]}
    )
    (event,) = [e for e in store.list_events() if e.id == first]
    assert (event.webhook_id, event.event_type, event.body) == ("msg_\ufffd", "a\ufffdb", body)
    (delivery,) = store.list_deliveries(event_id=first)
    assert (delivery.transform, delivery.error) == ("t\ufffd", "\ufffd")


def test_the_instances_renewing_their_leases_are_the_live_workers(
    instances: Callable[[str], PostgresStore], clock: Clock
) -> None:
    a, b = instances("a"), instances("b")
    assert a.live_workers(15) == 1  # none seen yet: the caller counts itself
    a.renew(15)
    b.renew(15)
    assert a.live_workers(15) == b.live_workers(15) == 2
    clock.now += 10
    a.renew(15)
    clock.now += 10  # b stopped renewing 20 s ago
    assert a.live_workers(15) == 1
