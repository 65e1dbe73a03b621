"""Search and filters (store/search.py): what an event is found by, on both stores."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dodo_transform.outgoing import OutgoingRequest
from dodo_transform.search_terms import event_terms
from dodo_transform.store import (
    DeliveryStatus,
    Filters,
    NewDelivery,
    NewEvent,
    SearchError,
    Store,
)
from dodo_transform.store.migrations import POSTGRES, SQLITE, migrate_postgres, migrate_sqlite
from dodo_transform.store.postgres import PostgresStore
from dodo_transform.store.search import MAX_QUERY_WORDS, query_terms
from dodo_transform.store.sqlite import SqliteStore
from tests.conftest import sample
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


def body(customer: str, email: str, name: str = "Ann Smith", **data: Any) -> bytes:
    event = sample("payment.succeeded")
    event["data"]["customer"] |= {"customer_id": customer, "email": email, "name": name}
    event["data"] |= data
    return json.dumps(event).encode()


def delivered(transform: str, status: DeliveryStatus, url: str) -> NewDelivery:
    request = OutgoingRequest("POST", url, {}, {"a": 1})
    return NewDelivery(transform, "v1", 0, status, request)


def test_an_event_is_found_by_its_ids_emails_names_and_webhook_id() -> None:
    terms = event_terms("msg_ABC", body("cus_X1", "Ada@Example.com", payment_id="pay_9"))
    for wanted in ("msg_abc", "cus_x1", "ada@example.com", "ada", "lovelace", "pay_9"):
        assert wanted in terms
    # Amounts, statuses, currencies and timestamps are not what anyone searches for.
    assert "usd" not in terms and "succeeded" not in terms and "2499" not in terms


def test_a_body_that_is_not_json_is_found_by_its_webhook_id_only() -> None:
    assert event_terms("msg_1", b"\xff not json") == ["msg_1"]


@pytest.mark.parametrize(
    ("q", "words"),
    [
        ("CUS_X1", ["cus_x1"]),
        ("  ada   Lovelace ", ["ada", "lovelace"]),
        ('"ada@example.com",', ["ada@example.com"]),
    ],
)
def test_a_search_looks_for_every_word_in_lower_case(q: str, words: list[str]) -> None:
    assert query_terms(q) == words


@pytest.mark.parametrize(
    "q", ["", "   ", '""', " ".join(f"w{n}" for n in range(MAX_QUERY_WORDS + 1))]
)
def test_a_search_with_nothing_or_too_much_to_look_for_is_refused(q: str) -> None:
    with pytest.raises(SearchError, match="q: "):
        query_terms(q)


def test_the_store_finds_a_customers_deliveries_and_events(store: Store) -> None:
    ((first, _), (second, _), (other, _)) = store.add_events(
        [
            NewEvent("msg_1", "payment.succeeded", body("cus_A", "ann@example.com")),
            NewEvent("msg_2", "subscription.active", body("cus_A", "ann@example.com")),
            NewEvent("msg_3", "payment.succeeded", body("cus_B", "bob@example.com", "Bob")),
        ]
    )
    segment, hook = "https://api.segment.io/v1/track", "http://hooks.example:8080/in"
    store.record_outcomes(
        {
            first: [delivered("segment", DeliveryStatus.DELIVERED, segment)],
            second: [delivered("segment", DeliveryStatus.DEAD, segment)],
            other: [delivered("hook", DeliveryStatus.DEAD, hook)],
        }
    )

    def found(**given: Any) -> list[int]:
        return [d.event_id for d in store.list_deliveries(filters=Filters(**given))]

    assert found(q="ANN@example.com") == [second, first]
    assert found(q="cus_a", status=DeliveryStatus.DEAD) == [second]
    assert found(q="cus_a", event_type="payment.succeeded") == [first]
    assert found(q="smith") == [second, first]  # the customer's name: "Ann Smith"
    assert found(q="smith bob") == []  # every word must be named
    assert found(q="msg_3") == [other]
    assert found(q="cus") == []  # whole words only
    assert found(destination="hooks.example") == [other]
    assert found(destination="https://api.segment.io") == [second, first]
    assert found(transform="hook") == [other]
    assert found(since=999.0, until=1000.5) == [other, second, first]
    assert found(until=1000.0) == []
    assert store.count_deliveries(Filters(q="cus_a")) == 2
    assert store.count_deliveries(Filters(status=DeliveryStatus.DEAD), up_to=0) == 0
    events = store.list_events(filters=Filters(q="ann@example.com"))
    assert [e.id for e in events] == [second, first]
    by_destination = store.list_events(filters=Filters(destination="hooks.example"))
    assert [e.id for e in by_destination] == [other]


def test_an_event_is_found_once_transformed_and_once_only(store: Store) -> None:
    event = NewEvent("msg_1", "payment.succeeded", body("cus_A", "ann@example.com"))
    ((event_id, _), _) = store.add_events([event, event])
    store.add_events([event])
    assert store.list_events(filters=Filters(q="cus_a")) == []  # pending: not indexed yet
    store.record_outcomes({event_id: []})
    store.record_outcomes({event_id: []})  # stored again (a test tool's call): indexed once
    assert [e.webhook_id for e in store.list_events(filters=Filters(q="cus_a"))] == ["msg_1"]


def test_terms_the_transform_stage_gives_are_stored_and_the_rest_made_from_bodies(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transform stage gives the terms the sandbox processes worked out for its round: they
    are stored as given (a burst's worker read every body back and parsed it otherwise); an
    event it gives none for is read back, and its terms made from its body."""
    ((given_id, _), (other_id, _)) = store.add_events(
        [
            NewEvent("msg_1", "payment.succeeded", body("cus_A", "ann@example.com")),
            NewEvent("msg_2", "payment.succeeded", body("cus_B", "bob@example.com", "Bob")),
        ]
    )
    read_back: list[Any] = []
    original = store._read  # type: ignore[attr-defined]

    def counting_read(query: str, params: Any = ()) -> Any:
        if "SELECT id, webhook_id, body FROM events" in query:
            read_back.append(list(params))
        return original(query, params)

    monkeypatch.setattr(store, "_read", counting_read)
    store.record_outcomes({given_id: [], other_id: []}, terms={given_id: ["msg_1", "cus_given"]})
    assert read_back == [[other_id]]
    assert [e.id for e in store.list_events(filters=Filters(q="cus_given"))] == [given_id]
    assert store.list_events(filters=Filters(q="cus_a")) == []  # its body was not read
    assert [e.id for e in store.list_events(filters=Filters(q="bob"))] == [other_id]


def test_pruned_events_leave_no_terms_behind(store: Store) -> None:
    ((event_id, _),) = store.add_events([NewEvent("msg_1", "a", body("cus_A", "a@x.io"))])
    store.record_outcomes({event_id: []})
    assert store.prune(older_than=2000.0) == 1
    assert store.list_events(filters=Filters(q="cus_a")) == []


def test_events_stored_before_search_are_indexed_by_the_migration(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    migrate_sqlite(db, SQLITE[:6])
    db.execute(
        "INSERT INTO events (webhook_id, event_type, body, received_at) VALUES (?, ?, ?, ?)",
        ("msg_old", "payment.succeeded", body("cus_OLD", "old@example.com"), 1.0),
    )
    db.close()
    store = SqliteStore(path)
    try:
        assert [e.webhook_id for e in store.list_events(filters=Filters(q="cus_old"))] == [
            "msg_old"
        ]
    finally:
        store.close()


def test_the_migration_indexes_old_events_on_postgres() -> None:
    with fresh_database() as url:
        with psycopg.connect(url) as db:
            migrate_postgres(db, POSTGRES[:6])
            with db.transaction():
                db.execute(
                    "INSERT INTO events (webhook_id, event_type, body, received_at)"
                    " VALUES (%s, %s, %s, %s)",
                    ("msg_old", "a", body("cus_OLD", "old@example.com"), 1.0),
                )
        store = PostgresStore(url, owner="test")
        try:
            found = store.list_events(filters=Filters(q="old@example.com"))
            assert [e.webhook_id for e in found] == ["msg_old"]
        finally:
            store.close()


def test_a_term_naming_many_events_finds_the_same_newest_first(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past `COMMON` events a term is checked per delivery, newest first (no million-event
    sort): the answers are the same."""
    bodies = [body(f"cus_{n}", f"p{n}@example.com", "Sam Common") for n in range(5)]
    added = store.add_events([NewEvent(f"msg_{n}", "a", b) for n, b in enumerate(bodies)])
    store.record_outcomes(
        {
            event_id: [delivered("t", DeliveryStatus.DEAD, "https://x.example/in")]
            for event_id, _ in added
        }
    )
    rare = store.list_deliveries(None, 3, filters=Filters(q="common"))
    monkeypatch.setattr("dodo_transform.store.reading.COMMON", 2)
    assert store.common_terms(Filters(q="common p1@example.com")) == frozenset({"common"})
    assert store.list_deliveries(None, 3, filters=Filters(q="common")) == rare
    assert [e.id for e in store.list_events(3, filters=Filters(q="common"))] == [
        d.event_id for d in rare
    ]
    assert store.count_replayable(Filters(q="common"), 4) == 4
    assert store.count_replayable(Filters(q="common sam")) == 5


@pytest.mark.parametrize(
    ("raw", "terms"),
    [
        (b'[{"id": "X"}, "s", 3]', ["m", "x"]),
        (b'"just a string"', ["m"]),
        (b'{"a": [[{"User_Name": "Q R"}]], "name": 5, "nid": "no"}', ["m", "q", "r"]),
        (b'{"email": "a\\u00e9@x.io", "x_id": "nul\\u0000here"}', ["m", "a\xe9@x.io"]),
    ],
)
def test_terms_come_from_searched_fields_at_any_depth(raw: bytes, terms: list[str]) -> None:
    assert event_terms("M", raw) == terms
