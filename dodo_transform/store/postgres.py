"""`Store` on PostgreSQL, shared by several instances (psycopg 3 and its connection pool).

Every call is one transaction, committed before it returns. Work is claimed in batches with
`FOR UPDATE SKIP LOCKED`, so instances claiming at the same moment take different rows without
waiting on each other. Each claim records its owner (this instance) and a lease, which the owner
renews while it works (`renew`); an instance that dies stops renewing, its leases run out, and
any other instance takes the work over. At startup an instance releases only its own leases
from before it restarted, never another's. Storing an event or a replay request NOTIFYs in the
same transaction, so every listening worker (`listen`) starts on it at once; workers still
poll, for retries that come due by time and for anything said while they were disconnected.
Work that must run once (schema migrations, pruning) takes an advisory lock. Psycopg's errors
become `StorageError` here.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, overload
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import ConnectionPool

from dodo_transform.errors import StorageError
from dodo_transform.outgoing import well_formed
from dodo_transform.store.heartbeats import SqlHeartbeats
from dodo_transform.store.migrations import migrate_postgres
from dodo_transform.store.reading import (
    DELIVERY_COLUMNS,
    SqlReads,
    delivery_from_row,
    event_from_row,
)
from dodo_transform.store.records import (
    REPLAYABLE_STATUSES,
    Delivery,
    DeliveryKey,
    DeliveryStatus,
    DeliveryUpdate,
    HandOff,
    Lane,
    NewDelivery,
    NewEvent,
    Recorded,
    ReplayRequest,
    StoredEvent,
    keeps_error,
    new_claim,
)
from dodo_transform.store.sessions import SqlSessions, Statement
from dodo_transform.store.writing import (
    INSERTED_COLUMNS,
    SqlWrites,
    json_or_none,
    request_json,
)

log = logging.getLogger("dodo_transform.store")

Connection = psycopg.Connection[tuple[Any, ...]]

SCHEMES = ("postgresql", "postgres")
CHANNEL = "dodo_transform"  # NOTIFY payloads: "events", "replays"
PRUNE_LOCK = 0x646F_646F_0002  # one instance prunes at a time; the others skip their turn
POOL_SIZE = 8
# A call waits at most this long for a connection: ingest answers 503 (Dodo retries) rather
# than hold a webhook while the database is away.
CONNECT_TIMEOUT_SECONDS = 5.0
LISTEN_POLL_SECONDS = 0.5  # how soon a listener notices it is asked to stop
LISTEN_RETRY_SECONDS = 1.0

_REPLAYABLE = tuple(status.value for status in REPLAYABLE_STATUSES)
_PENDING = DeliveryStatus.PENDING.value


# The PostgreSQL types of the columns a delivery is inserted with (for `unnest`'s arrays).
_COLUMN_TYPES = {
    "event_id": "bigint",
    "transform": "text",
    "version": "text",
    "generation": "int",
    "idx": "int",
    "status": "text",
    "request": "text",
    "logs": "text",
    "error": "text",
    "created_at": "float8",
    "updated_at": "float8",
    "destination": "text",
    "claim": "bigint",
    "lease_until": "float8",
    "lease_owner": "text",
}


def _array(sql_type: str, values: Sequence[Any]) -> list[Any]:
    """A column's values as one array parameter. Array parameters go in binary (`%b`): the
    text form escapes every element with a regular expression in Python, which took a third of
    the worker's time in a burst (15x slower than binary for a round's request JSON), and the
    binary form takes a list of one Python type only, so a float column's integers are made
    floats."""
    if sql_type == "float8":
        return [None if value is None else float(value) for value in values]
    return list(values)


class PostgresStore(SqlReads, SqlWrites, SqlSessions, SqlHeartbeats):
    """`Store` on a PostgreSQL database that several instances share. Thread-safe."""

    placeholder = "%s"
    BODY_HOLDS = "position(?::bytea in e.body) > 0"
    RELEASED = "lease_until = 0, lease_owner = NULL"
    HELD_COLUMNS = ("claim", "lease_until", "lease_owner")
    _unheld = (0, 0.0, None)

    def __init__(
        self,
        url: str,
        *,
        owner: str,
        clock: Callable[[], float] = time.time,
        durable: bool = True,
        claims_work: bool = True,
        pool_size: int = POOL_SIZE,
    ) -> None:
        """Open the store, migrating the schema if this release is newer.

        `owner` names this instance in the leases it takes; it must be the same after a
        restart and differ between instances (`open_store` uses the host and the data dir).
        `durable=False` commits without waiting for the disk (`synchronous_commit=off`): the
        worker's writes can all be derived again from the events, which ingest always commits
        durably. `claims_work` marks a process that takes work: it releases, at startup, the
        leases its owner held before a restart.
        """
        self.url = url
        self.owner = owner
        self._clock = clock
        self._listeners: list[_Listener] = []
        try:
            with psycopg.connect(url, connect_timeout=int(CONNECT_TIMEOUT_SECONDS)) as db:
                migrate_postgres(db)
                if claims_work:
                    with db.transaction():
                        _release_owned(db, owner)
        except psycopg.Error as error:
            raise StorageError(f"cannot open the store at {shown(url)}: {error}") from None
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=CONNECT_TIMEOUT_SECONDS,
            check=ConnectionPool.check_connection,  # a connection the server dropped is replaced
            configure=None if durable else _commit_without_waiting,
            kwargs={"connect_timeout": int(CONNECT_TIMEOUT_SECONDS)},
            name="dodo-transform",
        )
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)
        except psycopg.Error as error:
            self._pool.close()
            raise StorageError(f"cannot open the store at {shown(url)}: {error}") from None

    @contextmanager
    def _transaction(self, what: str = "write") -> Iterator[Connection]:
        """One transaction on a pooled connection, committed on leaving the block."""
        try:
            with self._pool.connection() as db:
                yield db
        except psycopg.Error as error:
            raise StorageError(f"store {what} failed: {_one_line(error)}") from None

    def _read(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._transaction("read") as db:
            return db.execute(query, params).fetchall()

    def _write(self, statements: Sequence[Statement]) -> list[Any]:
        rows: list[Any] = []
        with self._transaction() as db:
            for query, params in statements:
                cursor = db.execute(query, params)
                rows = cursor.fetchall() if cursor.description else []
        return rows

    # --- ingest -------------------------------------------------------------------------------

    def add_events(self, events: Sequence[NewEvent]) -> list[tuple[int, bool]]:
        """Store received events in one transaction: (id, True) for each new one, and
        (id of the stored one, False) for a webhook-id already known, by any instance."""
        if not events:
            return []
        events = [
            NewEvent(_text(e.webhook_id), _text(e.event_type), e.body, e.mode) for e in events
        ]
        with self._transaction() as db:
            # One statement for the whole group; the unique constraint decides what is new,
            # across instances too (a concurrent insert of the same webhook-id waits for the
            # other transaction and then counts as a conflict).
            created = dict(
                db.execute(
                    "INSERT INTO events (webhook_id, event_type, body, mode, received_at)"
                    " SELECT webhook_id, event_type, body, mode, %s"
                    " FROM unnest(%b::text[], %b::text[], %b::bytea[], %b::text[])"
                    " WITH ORDINALITY AS e (webhook_id, event_type, body, mode, n)"
                    " ORDER BY n ON CONFLICT (webhook_id) DO NOTHING RETURNING webhook_id, id",
                    (
                        self._clock(),
                        [event.webhook_id for event in events],
                        [event.event_type for event in events],
                        [event.body for event in events],
                        [event.mode for event in events],
                    ),
                ).fetchall()
            )
            known = {event.webhook_id for event in events} - created.keys()
            stored = dict(
                db.execute(
                    "SELECT webhook_id, id FROM events WHERE webhook_id = ANY(%s)", (list(known),)
                ).fetchall()
                if known
                else []
            )
            if created:
                db.execute("SELECT pg_notify(%s, 'events')", (CHANNEL,))
        return _group_results(events, created, stored)

    def priority(self) -> AbstractContextManager[None]:
        """Nothing to take: PostgreSQL's writers do not queue behind one lock."""
        return nullcontext()

    # --- the transform stage ------------------------------------------------------------------

    def claim_events(self, limit: int, lease_seconds: float) -> list[StoredEvent]:
        now = self._clock()
        with self._transaction() as db:
            rows = db.execute(
                "WITH picked AS (SELECT id FROM events WHERE state = 'pending'"
                " AND lease_until <= %s ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)"
                " UPDATE events e SET lease_until = %s, lease_owner = %s, claim = %s FROM picked"
                " WHERE e.id = picked.id"
                " RETURNING e.id, e.webhook_id, e.event_type, e.body, e.received_at, e.claim,"
                " e.mode",
                (now, limit, now + lease_seconds, self.owner, new_claim()),
            ).fetchall()
        return sorted((event_from_row(row) for row in rows), key=lambda event: event.id)

    def _held_by(self, hand_off: HandOff) -> tuple[Any, ...]:
        return (hand_off.claim, float(hand_off.lease_until), self.owner)

    def _insert_rows(
        self, db: Any, rows: list[tuple[Any, ...]], hand_off: HandOff | None
    ) -> dict[DeliveryKey, int]:
        """One INSERT for every row, from arrays (a statement per row costs a round trip)."""
        columns = INSERTED_COLUMNS + self.HELD_COLUMNS
        arrays = ", ".join(f"%b::{_COLUMN_TYPES[column]}[]" for column in columns)
        stored = db.execute(
            f"INSERT INTO deliveries ({', '.join(columns)}) SELECT * FROM unnest({arrays})"
            " ON CONFLICT DO NOTHING RETURNING event_id, transform, idx, id, claim",
            [
                _array(_COLUMN_TYPES[column], values)
                for column, values in zip(columns, zip(*rows, strict=True), strict=True)
            ],
        ).fetchall()
        if hand_off is None:
            return {}
        return {DeliveryKey(*row[:3]): row[3] for row in stored if row[4] == hand_off.claim}

    def record_outcomes(
        self,
        outcomes: Mapping[int, Sequence[NewDelivery]],
        claims: Mapping[int, int] | None = None,
        hand_off: HandOff | None = None,
        terms: Mapping[int, Sequence[str]] | None = None,
    ) -> Recorded:
        """Store every transform's outcome for these events and mark them done, atomically.

        With `claims` (event id -> the claim it was taken under), an event no longer held
        under that claim (this instance's lease ran out and another took it) keeps what it
        has: its outcome is dropped, and its id is returned. The deliveries `hand_off` names
        are stored claimed under it, held by this instance, and their ids returned.
        """
        pairs = self._terms(list(outcomes), terms or {})
        with self._transaction() as db:
            if claims is None:
                done = list(outcomes)
                db.execute(
                    "UPDATE events SET state = 'done', lease_until = 0, lease_owner = NULL"
                    " WHERE id = ANY(%s)",
                    (done,),
                )
            else:
                done = [
                    row[0]
                    for row in db.execute(
                        "UPDATE events e SET state = 'done', lease_until = 0, lease_owner = NULL"
                        " FROM unnest(%b::bigint[], %b::bigint[]) AS held (id, claim)"
                        " WHERE e.id = held.id AND e.claim = held.claim AND e.state = 'pending'"
                        " RETURNING e.id",
                        (list(outcomes), [claims[event_id] for event_id in outcomes]),
                    ).fetchall()
                ]
            handed = self._insert(db, {e: outcomes[e] for e in done}, 0, hand_off)
            kept = set(done)
            self._insert_terms(db, [pair for pair in pairs if pair[1] in kept])
        return Recorded(sorted(outcomes.keys() - set(done)), handed)

    # --- the delivery stage -------------------------------------------------------------------

    def claim_deliveries(self, rooms: Mapping[Lane, int], lease_seconds: float) -> list[Delivery]:
        """Claim up to `rooms[lane]` due deliveries of each lane, oldest due first; rows
        another instance is claiming are skipped, not waited for."""
        wanted = [(lane, room) for lane, room in rooms.items() if room > 0]
        if not wanted:
            return []
        now = self._clock()
        claim = new_claim()
        rows = []
        with self._transaction() as db:
            for lane, room in wanted:
                rows += db.execute(
                    # 'pending' written out: the partial index holds only those rows.
                    "WITH picked AS (SELECT id FROM deliveries WHERE status = 'pending'"
                    " AND transform = %s AND destination = %s"
                    " AND next_attempt_at <= %s AND lease_until <= %s"
                    " ORDER BY next_attempt_at, id LIMIT %s FOR UPDATE SKIP LOCKED)"
                    " UPDATE deliveries d SET lease_until = %s, lease_owner = %s, claim = %s"
                    " FROM picked, events e WHERE d.id = picked.id AND e.id = d.event_id"
                    f" RETURNING {DELIVERY_COLUMNS}",
                    (*lane, now, now, room, now + lease_seconds, self.owner, claim),
                ).fetchall()
        return sorted((delivery_from_row(row) for row in rows), key=lambda delivery: delivery.id)

    def record_results(self, updates: Sequence[DeliveryUpdate]) -> list[DeliveryUpdate]:
        """Store attempts and new statuses for deliveries, releasing their leases.

        An update made under a claim the delivery is no longer held under (this instance's
        lease ran out, say while it was paused, and another instance took it) is dropped, not
        laid over the newer claim's work: those are returned. An update without an attempt or
        an error keeps the stored error (a delivery given back unsent still says why).
        """
        if not updates:
            return []
        now = self._clock()
        with self._transaction() as db:
            changed = {
                (row[0], row[1])
                for row in db.execute(
                    "UPDATE deliveries d SET status = u.status,"
                    " error = CASE WHEN u.keep THEN d.error ELSE u.error END,"
                    " next_attempt_at = u.next_attempt_at, lease_until = 0, lease_owner = NULL,"
                    " attempts = d.attempts + u.tried, updated_at = %s,"
                    " request = COALESCE(u.request, d.request),"
                    " sent_headers = COALESCE(u.sent_headers, d.sent_headers)"
                    " FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::float8[],"
                    " %b::int[], %b::text[], %b::text[], %b::bigint[], %b::bool[])"
                    " AS u (id, status, error, next_attempt_at, tried, request, sent_headers,"
                    " claim, keep)"
                    " WHERE d.id = u.id AND (u.claim IS NULL"
                    " OR (d.claim = u.claim AND d.status = 'pending'))"
                    " RETURNING d.id, u.claim",
                    (
                        now,
                        [u.delivery_id for u in updates],
                        [str(u.status) for u in updates],
                        [_text(u.error) for u in updates],
                        [float(u.next_attempt_at) for u in updates],
                        [0 if u.attempt is None else 1 for u in updates],
                        [request_json(u.request) for u in updates],
                        [json_or_none(u.sent_headers) for u in updates],
                        [u.claim for u in updates],
                        [keeps_error(u) for u in updates],
                    ),
                ).fetchall()
            }
            attempts = [
                (
                    u.delivery_id,
                    u.attempt.at,
                    u.attempt.status_code,
                    _text(u.attempt.error),
                    u.attempt.duration_ms,
                )
                for u in updates
                if u.attempt is not None and (u.delivery_id, u.claim) in changed
            ]
            if attempts:
                with db.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO attempts (delivery_id, at, status_code, error, duration_ms)"
                        " VALUES (%s, %s, %s, %s, %s)",
                        attempts,
                    )
        return [u for u in updates if (u.delivery_id, u.claim) not in changed]

    def release(self, delivery_ids: Sequence[int]) -> None:
        """Make these deliveries claimable again at once, if this instance still holds them."""
        with self._transaction() as db:
            db.execute(
                "UPDATE deliveries SET lease_until = 0, lease_owner = NULL"
                " WHERE id = ANY(%s) AND lease_owner = %s",
                (list(delivery_ids), self.owner),
            )

    # --- leases and wake-ups ------------------------------------------------------------------

    def renew(self, lease_seconds: float) -> int:
        """Extend every lease this instance holds to `lease_seconds` from now; how many.

        It also marks this instance as running a pipeline now (see `live_workers`).
        """
        now = self._clock()
        until = now + lease_seconds
        renewed = 0
        with self._transaction() as db:
            db.execute(
                "INSERT INTO instances (owner, seen_at) VALUES (%s, %s)"
                " ON CONFLICT (owner) DO UPDATE SET seen_at = excluded.seen_at",
                (self.owner, now),
            )
            for table, unfinished in _LEASED:
                cursor = db.execute(
                    f"UPDATE {table} SET lease_until = %s WHERE lease_owner = %s AND {unfinished}",
                    (until, self.owner),
                )
                renewed += max(cursor.rowcount, 0)
        return renewed

    def live_workers(self, within_seconds: float) -> int:
        """How many instances renewed their leases within the last `within_seconds` (at least
        1: the caller counts itself): what shares a destination's rate limit."""
        rows = self._read(
            "SELECT COUNT(*) FROM instances WHERE seen_at > %s",
            (self._clock() - within_seconds,),
        )
        return max(1, int(rows[0][0]))

    def listen(self, wake: Callable[[bool], None]) -> Callable[[], None]:
        """Call `wake` (from a thread of the store's) whenever any instance stores an event or
        a replay request: with True when it was events (see `Store.listen`); the function
        returned stops listening."""
        listener = _Listener(self.url, wake)
        self._listeners.append(listener)
        listener.start()
        return listener.stop

    # --- replays: asked for by the web edge, run by a worker ----------------------------------

    def claim_replays(self, limit: int, lease_seconds: float) -> list[ReplayRequest]:
        now = self._clock()
        with self._transaction() as db:
            rows = db.execute(
                "WITH picked AS (SELECT delivery_id FROM replays WHERE done_at IS NULL"
                " AND lease_until <= %s ORDER BY requested_at LIMIT %s FOR UPDATE SKIP LOCKED)"
                " UPDATE replays r SET lease_until = %s, lease_owner = %s FROM picked"
                " WHERE r.delivery_id = picked.delivery_id"
                " RETURNING r.delivery_id, r.requested_at",
                (now, limit, now + lease_seconds, self.owner),
            ).fetchall()
        return sorted((ReplayRequest(*row) for row in rows), key=lambda r: r.requested_at)

    # --- where the shared writes differ (see writing.py) ---------------------------------------

    def _text(self, value: str) -> str:
        return _text(value)

    def _lock_event(self, db: Connection, event_id: int) -> None:
        """Two replays of one event (on two instances) take their generations in turn."""
        db.execute("SELECT 1 FROM events WHERE id = %s FOR UPDATE", (event_id,))

    def _may_prune(self, db: Connection) -> bool:
        """One instance prunes at a time: one that finds another pruning skips its turn, as
        the other does the same work."""
        row = db.execute("SELECT pg_try_advisory_xact_lock(%s)", (PRUNE_LOCK,)).fetchone()
        return row is not None and bool(row[0])

    def _insert_terms(self, db: Connection, pairs: Sequence[tuple[str, int]]) -> None:
        """One INSERT for all, from arrays (a statement per row costs a round trip)."""
        if not pairs:
            return
        db.execute(
            "INSERT INTO event_terms (term, event_id)"
            " SELECT * FROM unnest(%b::text[], %b::bigint[]) ON CONFLICT DO NOTHING",
            ([term for term, _ in pairs], [event_id for _, event_id in pairs]),
        )

    def _announce(self, db: Connection, what: str) -> None:
        db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, what))

    # --- upkeep -------------------------------------------------------------------------------

    def close(self) -> None:
        for listener in self._listeners:
            listener.stop()
        self._pool.close()


# The leased tables, with the condition of a row whose work is not finished.
_LEASED = (
    ("events", "state = 'pending'"),
    ("deliveries", f"status = '{_PENDING}'"),
    ("replays", "done_at IS NULL"),
)


def _release_owned(db: Connection, owner: str) -> None:
    """Leases `owner` held before it restarted: its previous run is gone, take them back now."""
    for table, _ in _LEASED:
        db.execute(
            f"UPDATE {table} SET lease_until = 0, lease_owner = NULL WHERE lease_owner = %s",
            (owner,),
        )


def _group_results(
    events: Sequence[NewEvent], created: dict[str, int], stored: dict[str, int]
) -> list[tuple[int, bool]]:
    """(id, new?) per event in order: a webhook-id's first occurrence in the group is the new
    one if it was created; a later one in the group, or one stored before, is a duplicate."""
    results = []
    seen = set()
    for event in events:
        webhook_id = event.webhook_id
        if webhook_id in created:
            results.append((int(created[webhook_id]), webhook_id not in seen))
        elif webhook_id in stored:
            results.append((int(stored[webhook_id]), False))
        else:  # pruned between the two statements
            raise StorageError(f"webhook {webhook_id} vanished while being stored")
        seen.add(webhook_id)
    return results


def _commit_without_waiting(db: Connection) -> None:
    db.execute("SET synchronous_commit = off")
    db.commit()


class _Listener:
    """A thread holding one connection that LISTENs, calling `wake` on every notification
    (with whether it says new events: ingest's, many a second in a burst).

    On a lost connection it reconnects (once a second) and wakes once, for anything said
    while it was away; meanwhile the pipeline's polling carries on.
    """

    def __init__(self, url: str, wake: Callable[[bool], None]) -> None:
        self._url = url
        self._wake = wake
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="store-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(LISTEN_POLL_SECONDS * 4)

    def _run(self) -> None:
        failing = False
        while not self._stopping.is_set():
            try:
                self._listen()
            except psycopg.Error as error:
                if not failing:
                    log.warning(
                        "not hearing about new work, polling until the database is back: %s",
                        _one_line(error),
                    )
                failing = True
                self._stopping.wait(LISTEN_RETRY_SECONDS)

    def _listen(self) -> None:
        with psycopg.connect(
            self._url, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT_SECONDS)
        ) as db:
            db.execute(f"LISTEN {CHANNEL}")
            self._wake(False)  # whatever was stored while no one listened
            while not self._stopping.is_set():
                for notice in db.notifies(timeout=LISTEN_POLL_SECONDS):
                    self._wake(notice.payload == "events")


def shown(url: str) -> str:
    """`url` with its password hidden, for messages and logs: the one in its user part, and a
    `password=` parameter (libpq takes one there too)."""
    parts = urlsplit(url)
    if parts.password is not None:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
    query = re.sub(r"(^|&)(password=)[^&]*", r"\1\2***", parts.query, flags=re.IGNORECASE)
    return parts._replace(query=query).geturl()


@overload
def _text(value: str) -> str: ...
@overload
def _text(value: None) -> None: ...
def _text(value: str | None) -> str | None:
    """Text as PostgreSQL can hold it: a lone surrogate (from a JSON escape in a signed event,
    or a handler's error) or a NUL character would fail the whole group of writes it is in,
    so each becomes U+FFFD. Bodies (bytea) and requests and logs (ASCII-escaped JSON) keep
    every character as they are."""
    if value is None:
        return None
    return well_formed(value).replace("\x00", "\ufffd")


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
