"""The store's behaviour, as the pipeline relies on it. Any `Store` must pass these."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from dodo_transform.errors import StorageError
from dodo_transform.outgoing import OutgoingRequest
from dodo_transform.store import (
    Attempt,
    Delivery,
    DeliveryKey,
    DeliveryStatus,
    DeliveryUpdate,
    HandOff,
    Lane,
    NewDelivery,
    NewEvent,
    Recorded,
    Store,
    TransformVersion,
)
from dodo_transform.store.migrations import LATEST
from dodo_transform.store.postgres import PostgresStore
from dodo_transform.store.records import new_claim
from dodo_transform.store.sqlite import SqliteStore
from tests.postgres import fresh_database


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> Iterator[Callable[[], Store]]:
    """Opens the store under test; each call is the same instance (re)starting."""
    opened: list[Store] = []
    with ExitStack() as cleanup:
        url = cleanup.enter_context(fresh_database()) if request.param == "postgres" else ""

        def make() -> Store:
            store: Store = (
                PostgresStore(url, owner="test-instance", clock=clock)
                if url
                else SqliteStore(tmp_path / "store.db", clock=clock)
            )
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


def claim_all(store: Store, limit: int, lease_seconds: float) -> list[Delivery]:
    """Claim up to `limit` due deliveries of every lane."""
    return store.claim_deliveries(dict.fromkeys(store.pending_lanes(), limit), lease_seconds)


def pending(transform: str = "t", index: int = 0) -> NewDelivery:
    request = OutgoingRequest("POST", "https://api.segment.io/v1/track", {}, {})
    return NewDelivery(transform, "v1", index, DeliveryStatus.PENDING, request=request)


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
    (delivery,) = claim_all(store, 10, 60)
    assert delivery.webhook_id == "msg_1" and delivery.request is not None
    assert claim_all(store, 10, 60) == []
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
    assert claim_all(store, 10, 60) == []
    clock.now += 31
    (again,) = claim_all(store, 10, 60)
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
    assert claim_all(store, 10, 3600) and store.claim_events(10, 3600)
    store.close()
    reopened = open_store()
    assert len(claim_all(reopened, 10, 60)) == 1
    assert [e.webhook_id for e in reopened.claim_events(10, 60)] == ["msg_2"]


def test_the_claimer_keeps_its_leases_by_renewing_them(store: Store, clock: Clock) -> None:
    event_id, _ = add(store, "msg_1")
    add(store, "msg_2")
    store.record_outcomes({event_id: [pending()]})
    assert store.claim_events(10, 60) and claim_all(store, 10, 60)
    clock.now += 50
    assert store.renew(60) == 2
    clock.now += 50  # past the first lease, within the renewed one
    assert store.claim_events(10, 60) == [] and claim_all(store, 10, 60) == []
    clock.now += 11  # not renewed since: the work is anyone's again
    assert len(store.claim_events(10, 60)) == 1 and len(claim_all(store, 10, 60)) == 1


def test_finished_work_holds_no_lease_to_renew(store: Store, clock: Clock) -> None:
    event_id, _ = add(store, "msg_1")
    store.claim_events(10, 60)
    store.record_outcomes({event_id: [pending()]})
    (delivery,) = claim_all(store, 10, 60)
    store.record_results([DeliveryUpdate(delivery.id, DeliveryStatus.DELIVERED)])
    assert store.renew(60) == 0


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


def test_a_delivery_is_replayed_once_however_many_replays_race(store: Store) -> None:
    """Two workers replaying one dead delivery (one paused past its claim): the second stores
    nothing, so the message is not sent twice."""
    event_id, _ = add(store, "msg_1", "a", b"{}")
    store.record_outcomes({event_id: [NewDelivery("t", "v1", 0, "dead", error="HTTP 400")]})
    (dead,) = store.list_deliveries()
    assert store.replace_outcomes(event_id, "t", [pending("t")], dead.id) is True
    assert store.replace_outcomes(event_id, "t", [pending("t")], dead.id) is False
    assert sorted(d.generation for d in store.list_deliveries(event_id=event_id)) == [0, 1]


def test_dry_run_can_record_the_request_it_did_not_send(store: Store) -> None:
    event_id, _ = add(store, "msg_1", "a", b"{}")
    store.record_outcomes({event_id: [pending()]})
    (delivery,) = claim_all(store, 1, 60)
    exact = OutgoingRequest("POST", "http://x/v1/track", {"Authorization": "Basic k"}, {"a": 1})
    store.record_results([DeliveryUpdate(delivery.id, DeliveryStatus.DRY_RUN, request=exact)])
    stored = store.get_delivery(delivery.id)
    # Kept exactly as it would have gone out: redaction is for display, at the web edge.
    assert stored is not None and stored.request == exact
    assert stored.status is DeliveryStatus.DRY_RUN


def test_prune_removes_old_settled_events_only(store: Store, clock: Clock) -> None:
    old, _ = add(store, "msg_old", "a", b"{}")
    store.record_outcomes({old: [NewDelivery("t", "v", 0, DeliveryStatus.DELIVERED)]})
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


def test_a_group_answers_each_event_with_its_stored_id(store: Store) -> None:
    (known, _) = add(store, "msg_known")
    ids = ["msg_new1", "msg_known", "msg_new2", "msg_new1", "msg_new3"]
    results = store.add_events([NewEvent(webhook_id, "a", b"{}") for webhook_id in ids])
    assert [created for _, created in results] == [True, False, True, False, True]
    assert results[1][0] == known
    for webhook_id, (event_id, _) in zip(ids, results, strict=True):
        stored = store.get_event(event_id)
        assert stored is not None and stored.webhook_id == webhook_id
    fresh = store.add_events([NewEvent(f"msg_fresh_{n}", "a", b"{}") for n in range(40)])
    assert [store.get_event(event_id).webhook_id for event_id, _ in fresh] == [  # type: ignore[union-attr]
        f"msg_fresh_{n}" for n in range(40)
    ]


def test_lists_page_by_cursor_newest_first(store: Store) -> None:
    ids = [add(store, f"msg_{n}")[0] for n in range(5)]
    store.record_outcomes({event_id: [pending()] for event_id in ids})
    first = store.list_events(2)
    assert [e.id for e in first] == ids[:-3:-1]
    rest = store.list_events(10, before=first[-1].id)
    assert [e.id for e in rest] == ids[-3::-1]
    deliveries = store.list_deliveries(limit=3)
    more = store.list_deliveries(limit=3, before=deliveries[-1].id)
    assert len(deliveries) + len(more) == 5
    assert {d.id for d in deliveries}.isdisjoint(d.id for d in more)


def test_deliveries_of_several_events_come_in_one_call(store: Store) -> None:
    a, b, c = (add(store, f"msg_{n}")[0] for n in "abc")
    store.record_outcomes({a: [pending()], b: [pending(), pending("u")], c: [pending()]})
    found = store.list_deliveries(limit=100, event_ids=[a, b])
    assert sorted(d.event_id for d in found) == [a, b, b]
    assert store.list_deliveries(limit=100, event_ids=[]) == []


def test_a_replay_request_is_claimed_once_and_finished(store: Store, clock: Clock) -> None:
    event_id, _ = add(store, "msg_1")
    store.record_outcomes({event_id: [NewDelivery("t", "v", 0, DeliveryStatus.FAILED)]})
    (failed,) = store.list_deliveries()
    store.request_replays([failed.id])
    store.request_replays([failed.id])  # asking twice while waiting is one request
    (claimed,) = store.claim_replays(10, 60)
    assert claimed.delivery_id == failed.id
    assert store.claim_replays(10, 60) == []  # leased
    waiting = store.get_replay(failed.id)
    assert waiting is not None and waiting.done_at is None
    store.finish_replay(failed.id, [DeliveryStatus.PENDING], None)
    done = store.get_replay(failed.id)
    assert done is not None and done.done_at is not None
    assert done.statuses == (DeliveryStatus.PENDING,) and done.error is None
    assert store.claim_replays(10, 60) == []
    store.request_replays([failed.id])  # asked again once finished: runs again
    assert [r.delivery_id for r in store.claim_replays(10, 60)] == [failed.id]


def test_an_abandoned_replay_claim_is_taken_again_after_its_lease(
    store: Store, clock: Clock
) -> None:
    event_id, _ = add(store, "msg_1")
    store.record_outcomes({event_id: [NewDelivery("t", "v", 0, DeliveryStatus.DEAD)]})
    (dead,) = store.list_deliveries()
    store.request_replays([dead.id])
    assert len(store.claim_replays(10, 60)) == 1
    clock.now += 61
    assert len(store.claim_replays(10, 60)) == 1


def test_counts_are_by_typed_status(store: Store) -> None:
    event_id, _ = add(store, "msg_1")
    store.record_outcomes({event_id: [pending(), NewDelivery("u", "v", 0, DeliveryStatus.SKIPPED)]})
    assert store.counts() == {DeliveryStatus.PENDING: 1, DeliveryStatus.SKIPPED: 1}


def test_a_database_from_before_versioning_is_migrated_in_place(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, webhook_id TEXT NOT NULL UNIQUE,"
        " event_type TEXT NOT NULL, body BLOB NOT NULL, received_at REAL NOT NULL,"
        " state TEXT NOT NULL DEFAULT 'pending', lease_until REAL NOT NULL DEFAULT 0);"
        "INSERT INTO events (webhook_id, event_type, body, received_at)"
        " VALUES ('msg_kept', 'a', '{}', 1.0);"
    )
    old.commit()
    old.close()
    store = SqliteStore(path)
    try:
        assert [e.webhook_id for e in store.list_events()] == ["msg_kept"]
        (version,) = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()
        assert version == LATEST
        event_id = store.list_events()[0].id
        store.record_outcomes({event_id: [NewDelivery("t", "v", 0, DeliveryStatus.FAILED)]})
        store.request_replays([d.id for d in store.list_deliveries()])  # the new table exists
    finally:
        store.close()


def test_a_database_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "new.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {LATEST + 1}")
    db.close()
    with pytest.raises(StorageError, match="newer than this release"):
        SqliteStore(path)


def test_text_with_lone_surrogates_is_stored_repaired_and_never_fails_a_write(
    store: Store,
) -> None:
    """A signed event may carry `"type": "\\ud83d"` and a handler's error or log any text; one
    such string must not fail the group of writes it is in. Bodies and requests keep every
    character; other text is stored with U+FFFD for each lone surrogate."""
    body = b'{"type": "\\ud83d", "name": "\\ud83d Ada"}'
    (lone, _), (other, _) = store.add_events(
        [NewEvent("msg_1", "\ud83d", body), NewEvent("msg_2", "payment.succeeded", b"{}")]
    )
    identify = OutgoingRequest("POST", "https://api.segment.io/v1/identify", {}, {"n": "\ud83d"})
    store.record_outcomes(
        {
            lone: [
                NewDelivery("t", "v1", 0, DeliveryStatus.PENDING, request=identify),
                NewDelivery(
                    "u", "v1", 0, DeliveryStatus.FAILED, logs=[["log", "\udc00"]], error="\ud83d!"
                ),
            ],
            other: [pending()],
        }
    )
    (event, _) = store.list_events()[::-1]
    assert (event.event_type, event.body) == ("\ufffd", body)
    by_transform = {d.transform: d for d in store.list_deliveries(event_id=lone)}
    sent = by_transform["t"]
    assert sent.request is not None and sent.request.payload == {"n": "\ud83d"}
    assert by_transform["u"].error == "\ufffd!"
    store.record_results(
        [DeliveryUpdate(sent.id, "dead", Attempt(1.0, None, "\ud83d", 1.0), "gave up \ud83d")]
    )
    assert store.attempts(sent.id)[0].error == "\ufffd"
    assert store.get_delivery(sent.id).error == "gave up \ufffd"  # type: ignore[union-attr]
    store.request_replays([sent.id])
    store.claim_replays(10, 60)
    store.finish_replay(sent.id, (), "\ud83d")
    assert store.get_replay(sent.id).error == "\ufffd"  # type: ignore[union-attr]


def test_the_sqlite_file_and_its_wal_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "data" / "store.db")
    try:
        store.add_events([NewEvent("msg_1", "a", b"{}")])
        modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "data").iterdir()}
    finally:
        store.close()
    assert modes["store.db"] == 0o600 and modes["store.db-wal"] == 0o600
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700


def test_transform_versions_are_kept_once_each_newest_first(
    open_store: Callable[[], Store], clock: Clock
) -> None:
    store = open_store()
    assert store.list_versions("t") == []
    assert store.record_versions([]) == 0
    first = TransformVersion("t", "aaaaaaaaaaaa", "function handler(w) { return w; }\n")
    other = TransformVersion("u", "cccccccccccc", "// u\n")
    assert store.record_versions([first, other]) == 2
    clock.now += 10
    second = TransformVersion("t", "bbbbbbbbbbbb", "function handler(w) {\n  return w;\n}\n")
    # Seen again (another process, a restart): kept once, with the time first seen.
    assert store.record_versions([second, first]) == 1
    assert store.record_versions([first]) == 0
    kept = open_store().list_versions("t")
    assert [(v.version, v.first_seen) for v in kept] == [
        ("bbbbbbbbbbbb", clock.now),
        ("aaaaaaaaaaaa", clock.now - 10),
    ]
    assert kept[1].source == first.source and kept[1].name == "t"
    assert store.get_version("t", "aaaaaaaaaaaa") == kept[1]
    assert store.get_version("t", "cccccccccccc") is None
    assert [v.version for v in store.list_versions("u")] == ["cccccccccccc"]
    # Pruning old events keeps the history.
    store.prune(clock.now + 1)
    assert len(store.list_versions("t")) == 2


def done_event(store: Store, webhook_id: str, event_type: str = "a") -> int:
    """An event the transform stage has finished, with a delivery from transform `t`."""
    event_id, _ = add(store, webhook_id, event_type)
    (claimed,) = store.claim_events(1, 30)
    store.record_outcomes({claimed.id: [pending("t")]})
    return event_id


def test_a_backfill_takes_finished_events_the_transform_has_no_delivery_for(
    store: Store, clock: Clock
) -> None:
    old = done_event(store, "m1", "payment.succeeded")
    clock.now += 100
    newer = done_event(store, "m2", "refund.succeeded")
    done_event(store, "m3", "payment.succeeded")
    store.replace_outcomes(newer, "new", [pending("new")])  # `new` already has m2
    add(store, "m4")  # still pending: the transform stage will run `new` on it
    scope = {"event_types": None, "since": None}
    assert store.count_backfill("new", **scope) == {"payment.succeeded": 2}
    assert store.count_backfill("new", event_types=["refund.succeeded"], since=None) == {}
    assert store.count_backfill("new", event_types=None, since=clock.now) == {
        "payment.succeeded": 1
    }
    assert store.count_backfill("t", **scope) == {}
    page = store.backfill_events("new", **scope, after=0, up_to=10**9, limit=1)
    assert [e.id for e in page] == [old]


def test_a_backfill_moves_its_cursor_with_its_outcomes_once(store: Store, clock: Clock) -> None:
    first = done_event(store, "m1")
    second = done_event(store, "m2")
    backfill_id = store.start_backfill("new", ["a"], None)
    add(store, "m3")  # after the start: not the backfill's
    (started,) = store.unfinished_backfills()
    assert (started.id, started.transform, started.event_types) == (backfill_id, "new", ("a",))
    assert (started.cursor, started.last_event_id) == (0, second)
    assert store.advance_backfill(backfill_id, 0, first, {first: [pending("new")]})
    # A second worker that read the same cursor stores nothing.
    assert not store.advance_backfill(backfill_id, 0, first, {first: [pending("new", 1)]})
    assert [d.index for d in store.list_deliveries(transform="new")] == [0]
    moved = store.get_backfill(backfill_id)
    assert moved is not None and (moved.cursor, moved.ran) == (first, 1)
    assert store.count_backfill(
        "new", event_types=["a"], since=None, after=first, up_to=second
    ) == {"a": 1}
    store.finish_backfill(backfill_id, None)
    assert store.unfinished_backfills() == []
    (finished,) = store.list_backfills()
    assert finished.done_at == clock.now and finished.error is None


def test_a_backfill_leaves_an_event_that_got_a_delivery_meanwhile(store: Store) -> None:
    event = done_event(store, "m1")
    backfill_id = store.start_backfill("new", None, None)
    store.replace_outcomes(event, "new", [pending("new")])  # a second backfill got there first
    assert store.advance_backfill(
        backfill_id, 0, event, {event: [pending("new"), pending("new", 1)]}
    )
    assert [d.generation for d in store.list_deliveries(transform="new")] == [0]


def test_deliveries_are_listed_by_transform_and_by_when_their_event_came(
    store: Store, clock: Clock
) -> None:
    done_event(store, "m1")
    clock.now += 50
    late = done_event(store, "m2")
    assert [d.transform for d in store.list_deliveries(transform="t")] == ["t", "t"]
    assert store.list_deliveries(transform="other") == []
    assert [d.event_id for d in store.list_deliveries(since=clock.now - 10)] == [late]


# --- lanes: each transform's deliveries to each destination -----------------------------------


def to(destination: str, transform: str = "t", index: int = 0) -> NewDelivery:
    request = OutgoingRequest("POST", f"{destination}/hook?token=s3cret", {}, {})
    return NewDelivery(transform, "v1", index, DeliveryStatus.PENDING, request=request)


def test_a_delivery_names_its_destination_by_origin_only(store: Store) -> None:
    event_id, _ = add(store, "msg_1")
    store.record_outcomes({event_id: [to("https://user:pw@Hooks.Slack.com:443")]})
    (delivery,) = store.list_deliveries()
    assert delivery.destination == "https://hooks.slack.com"
    assert store.pending_lanes() == [Lane("t", "https://hooks.slack.com")]


def test_lanes_are_claimed_each_up_to_its_room(store: Store) -> None:
    """A lane with a backlog gets what it has room for; every other lane gets its own share in
    the same claim, whatever the order the deliveries came in."""
    slack, segment = "https://hooks.slack.com", "https://api.segment.io"
    for n in range(50):
        event_id, _ = add(store, f"msg_{n}")
        store.record_outcomes({event_id: [to(slack, "a")]})
    late, _ = add(store, "msg_late")
    store.record_outcomes({late: [to(segment, "b", 0), to(slack, "b", 1)]})
    assert store.pending_lanes() == [Lane("a", slack), Lane("b", segment), Lane("b", slack)]
    claimed = store.claim_deliveries({Lane("a", slack): 3, Lane("b", segment): 5}, 60)
    assert sorted(d.lane for d in claimed) == [Lane("a", slack)] * 3 + [Lane("b", segment)]
    assert store.count_waiting(Lane("a", slack)) == 50


def test_a_result_is_stored_only_under_the_claim_it_was_made_under(
    store: Store, clock: Clock
) -> None:
    """A worker paused past its lease finds its delivery claimed again: its late result is
    dropped (and named), never laid over the newer claim's."""
    event_id, _ = add(store, "msg_1")
    store.record_outcomes({event_id: [pending()]})
    (stale,) = claim_all(store, 10, 5)
    clock.now += 6  # the lease runs out unrenewed
    (fresh,) = claim_all(store, 10, 60)
    assert fresh.claim != stale.claim
    delivered = DeliveryUpdate(
        fresh.id, "delivered", Attempt(clock.now, 200, None, 1), claim=fresh.claim
    )
    assert store.record_results([delivered]) == []
    late = DeliveryUpdate(
        stale.id,
        "pending",
        Attempt(clock.now, 500, "HTTP 500", 1),
        "HTTP 500",
        clock.now + 5,
        claim=stale.claim,
    )
    assert store.record_results([late]) == [late]
    kept = store.get_delivery(fresh.id)
    assert kept is not None and (kept.status, kept.attempts) == ("delivered", 1)
    assert [a.status_code for a in store.attempts(fresh.id)] == [200]


def test_outcomes_are_stored_only_under_the_claim_the_event_was_taken_with(
    store: Store, clock: Clock
) -> None:
    event_id, _ = add(store, "msg_1")
    (stale,) = store.claim_events(10, 5)
    clock.now += 6
    (fresh,) = store.claim_events(10, 60)
    recorded = store.record_outcomes({event_id: [pending("fresh")]}, {event_id: fresh.claim})
    assert recorded.dropped == []
    stale_outcome = {event_id: [pending("stale")]}
    hand_off = HandOff(frozenset({DeliveryKey(event_id, "stale", 0)}), new_claim(), clock.now + 60)
    recorded = store.record_outcomes(stale_outcome, {event_id: stale.claim}, hand_off)
    assert recorded == Recorded([event_id], {})  # nothing stored, nothing handed
    assert [d.transform for d in store.list_deliveries()] == ["fresh"]


def test_a_hand_off_stores_the_deliveries_it_names_claimed_for_this_worker(
    store: Store, clock: Clock
) -> None:
    first, _ = add(store, "msg_1")
    second, _ = add(store, "msg_2")
    held = {event.id: event.claim for event in store.claim_events(10, 60)}
    invalid = NewDelivery("t", "v1", 1, DeliveryStatus.INVALID, request=pending().request)
    outcomes = {first: [pending("t", 0), invalid], second: [pending("t", 0), pending("u", 0)]}
    named = {DeliveryKey(first, "t", 0), DeliveryKey(first, "t", 1), DeliveryKey(second, "u", 0)}
    hand_off = HandOff(frozenset(named), new_claim(), clock.now + 30)
    recorded = store.record_outcomes(outcomes, held, hand_off)
    assert recorded.dropped == []
    # Only pending deliveries are handed: the invalid one is stored as it is.
    assert set(recorded.handed) == {DeliveryKey(first, "t", 0), DeliveryKey(second, "u", 0)}
    by_id = {d.id: d for d in store.list_deliveries()}
    assert by_id[recorded.handed[DeliveryKey(second, "u", 0)]].transform == "u"
    # A claim takes only what was not handed, until the hand-off's lease runs out.
    assert [(d.event_id, d.transform) for d in claim_all(store, 10, 60)] == [(second, "t")]
    handed_id = recorded.handed[DeliveryKey(first, "t", 0)]
    done = DeliveryUpdate(handed_id, DeliveryStatus.DELIVERED, claim=hand_off.claim)
    assert store.record_results([done]) == []  # stored under the hand-off's claim
    clock.now += 31
    assert [(d.event_id, d.transform) for d in claim_all(store, 10, 60)] == [(second, "u")]


def test_the_headers_an_attempt_sent_are_kept_with_the_delivery(store: Store) -> None:
    event_id, _ = add(store, "msg_1")
    store.record_outcomes({event_id: [pending()]})
    (delivery,) = claim_all(store, 10, 60)
    shown = {"Authorization": "[redacted]", "Content-Type": "application/json"}
    update = DeliveryUpdate(delivery.id, "delivered", claim=delivery.claim, sent_headers=shown)
    store.record_results([update])
    stored = store.get_delivery(delivery.id)
    assert stored is not None and stored.sent_headers == shown


def test_deliveries_stored_before_destinations_existed_get_theirs(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "v4.db"
    store = SqliteStore(path)
    event_id, _ = add(store, "msg_1")
    store.record_outcomes({event_id: [to("https://hooks.slack.com")]})
    store.close()
    db = sqlite3.connect(path)
    db.executescript(
        "DROP INDEX deliveries_lanes; ALTER TABLE deliveries DROP COLUMN destination;"
        " ALTER TABLE deliveries DROP COLUMN claim; ALTER TABLE deliveries DROP COLUMN"
        " sent_headers; ALTER TABLE events DROP COLUMN claim;"
        " ALTER TABLE transform_versions DROP COLUMN settings; DROP TABLE console_sessions;"
        " DROP TABLE login_attempts; DROP TABLE heartbeats; ALTER TABLE events DROP COLUMN"
        " mode; DROP TABLE event_terms; DROP TABLE bulk_replays; DROP TABLE audit_log;"
        " PRAGMA user_version = 4;"
    )
    db.close()
    reopened = SqliteStore(path)
    try:
        assert reopened.pending_lanes() == [Lane("t", "https://hooks.slack.com")]
    finally:
        reopened.close()


def test_a_delivery_given_back_unsent_keeps_why_it_last_failed(store: Store) -> None:
    event_id, _ = add(store, "msg_1")
    store.record_outcomes({event_id: [pending()]})
    (delivery,) = claim_all(store, 10, 60)
    failed = Attempt(1.0, 503, "HTTP 503", 1)
    store.record_results(
        [DeliveryUpdate(delivery.id, "pending", failed, "HTTP 503", claim=delivery.claim)]
    )
    (again,) = claim_all(store, 10, 60)
    store.record_results([DeliveryUpdate(again.id, "pending", claim=again.claim)])  # given back
    kept = store.get_delivery(again.id)
    assert kept is not None and (kept.error, kept.attempts) == ("HTTP 503", 1)


# --- the console's sessions and login attempts ------------------------------------------------


def test_a_session_is_kept_until_it_is_closed_or_expires(store: Store, clock: Clock) -> None:
    store.open_session("key-a", 100)
    store.open_session("key-b", 100)
    assert store.session_open("key-a") and store.session_open("key-b")
    assert not store.session_open("key-unknown")
    store.close_session("key-a")
    assert not store.session_open("key-a") and store.session_open("key-b")
    clock.now += 101
    assert not store.session_open("key-b")


def test_sessions_are_seen_by_every_instance_sharing_the_store(
    open_store: Callable[[], Store],
) -> None:
    first, second = open_store(), open_store()
    first.open_session("key-a", 100)
    assert second.session_open("key-a")
    second.close_session("key-a")
    assert not first.session_open("key-a")


def test_login_attempts_are_counted_per_address_in_windows(store: Store, clock: Clock) -> None:
    counts = [store.count_login_attempt("203.0.113.7", 60) for _ in range(3)]
    assert counts == [(1, 60.0), (2, 60.0), (3, 60.0)]
    assert store.count_login_attempt("198.51.100.2", 60) == (1, 60.0)
    clock.now += 45
    assert store.count_login_attempt("203.0.113.7", 60) == (4, 15.0)
    clock.now += 15
    assert store.count_login_attempt("203.0.113.7", 60) == (1, 60.0)  # a new window
    store.forget_login_attempts("203.0.113.7")
    assert store.count_login_attempt("203.0.113.7", 60) == (1, 60.0)


# --- SQLite: its files are checked, not assumed -----------------------------------------------


def _remove(path: Path) -> None:
    path.unlink()


def _replace(path: Path) -> None:
    copy = path.with_name(path.name + ".copy")
    copy.write_bytes(path.read_bytes())
    copy.replace(path)


@pytest.mark.parametrize(
    ("file", "change", "said"),
    [
        ("store.db", _remove, "was removed"),
        ("store.db-wal", _remove, "was removed"),
        ("store.db-shm", _remove, "was removed"),
        ("store.db", _replace, "was replaced by another file"),
    ],
)
def test_a_store_file_removed_or_replaced_fails_ping_and_every_later_event(
    tmp_path: Path, file: str, change: Callable[[Path], None], said: str
) -> None:
    """SQLite would go on committing into the old file, which no restart finds again."""
    store = SqliteStore(tmp_path / "store.db")
    try:
        add(store, "msg_before")
        store.ping()
        change(tmp_path / file)
        with pytest.raises(StorageError, match=f"{file} {said}.*restart the service"):
            store.ping()
        with pytest.raises(StorageError, match=said):
            add(store, "msg_after")
    finally:
        store.close()


def test_ping_says_so_while_the_disk_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dodo_transform.store import sqlite

    store = SqliteStore(tmp_path / "store.db")
    try:
        store.ping()
        monkeypatch.setattr(sqlite, "free_bytes", lambda folder: 300 * 1024)
        with pytest.raises(StorageError, match=r"is full \(300 KiB free\)"):
            store.ping()
        monkeypatch.setattr(sqlite, "free_bytes", lambda folder: sqlite.MIN_FREE_BYTES)
        store.ping()
    finally:
        store.close()


def test_heartbeats_list_the_instances_seen_lately_each_once(store: Store, clock: Clock) -> None:
    from dodo_transform.store import Heartbeat

    first = Heartbeat("a:/data/1", "a", "all", "1.0", {"t": "v1", "s": "v9"}, started_at=5.0)
    store.beat(first)
    clock.now += 10
    store.beat(Heartbeat("b:/data/2", "b", "ingest", "1.1", {"t": "v2"}, started_at=6.0))
    store.beat(first)  # again: still one row, seen now
    beats = store.heartbeats(within_seconds=15)
    assert [(b.instance, b.role, b.release, dict(b.transforms)) for b in beats] == [
        ("a:/data/1", "all", "1.0", {"s": "v9", "t": "v1"}),
        ("b:/data/2", "ingest", "1.1", {"t": "v2"}),
    ]
    assert beats[0].seen_at == clock.now and beats[0].started_at == 5.0
    clock.now += 16  # neither beat since: both gone from the list
    assert store.heartbeats(within_seconds=15) == []
    store.beat(first)
    store.forget_instance("a:/data/1")  # an instance that stops leaves at once
    assert store.heartbeats(within_seconds=15) == []
