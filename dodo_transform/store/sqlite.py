"""The durable store: received events, what each transform made of them, and every delivery attempt.

`Store` is the interface the pipeline uses; `SqliteStore` implements it on
embedded SQLite in WAL mode with `synchronous=FULL`, so a returned call is on
disk. A PostgreSQL store for several instances would implement the same
interface and pass the same tests (`tests/test_store.py`).

Work is claimed with a lease: a claimed event or delivery carries
`lease_until`, and a worker that dies simply lets the lease run out. One
process claims work (the worker), so at its startup it releases every lease at
once; the HTTP process opens the same file to store events and answer the
admin API.

Delivery statuses:
    pending    waiting for its next attempt
    delivered  the destination answered 2xx
    dry_run    recorded, not sent (no write key configured)
    dead       retries exhausted, or a final 4xx
    blocked    the destination is not on the allowlist; never sent
    invalid    Segment would drop it silently; never sent
    failed     the transform failed (its error is kept); not retried until replayed
    skipped    the handler left `url` empty
    cancelled  the handler set `cancel`
    replayed   superseded by a replay
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from dodo_transform.errors import StorageError
from dodo_transform.outbound.segment import redact_headers

FINAL_STATUSES = ("delivered", "dry_run", "dead", "blocked", "invalid", "skipped", "cancelled")
REPLAYABLE_STATUSES = ("failed", "dead")


@dataclass(frozen=True)
class NewEvent:
    """A verified webhook, about to be stored."""

    webhook_id: str
    event_type: str
    body: bytes


@dataclass(frozen=True)
class StoredEvent:
    id: int
    webhook_id: str
    event_type: str
    body: bytes
    received_at: float


@dataclass(frozen=True)
class NewDelivery:
    """One item of a transform's outcome for one event, about to be stored."""

    transform: str
    version: str
    index: int
    status: str
    request: dict[str, Any] | None = None
    logs: list[Any] | None = None
    error: str | None = None


@dataclass(frozen=True)
class Delivery:
    id: int
    event_id: int
    webhook_id: str
    event_type: str
    transform: str
    version: str
    generation: int
    index: int
    status: str
    request: dict[str, Any] | None
    logs: list[Any]
    error: str | None
    attempts: int
    next_attempt_at: float
    created_at: float
    updated_at: float
    received_at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_id": self.event_id,
            "webhook_id": self.webhook_id,
            "event_type": self.event_type,
            "transform": self.transform,
            "version": self.version,
            "generation": self.generation,
            "index": self.index,
            "status": self.status,
            "request": _shown(self.request),
            "logs": self.logs,
            "error": self.error,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "received_at": self.received_at,
        }


@dataclass(frozen=True)
class Attempt:
    at: float
    status_code: int | None
    error: str | None
    duration_ms: float


@dataclass(frozen=True)
class DeliveryUpdate:
    """A delivery's new status after a round, with the attempt made (None if none was)."""

    delivery_id: int
    status: str
    attempt: Attempt | None = None
    error: str | None = None
    next_attempt_at: float = 0.0
    request: dict[str, Any] | None = None  # replaces the stored request (a dry run's exact one)


class Store(Protocol):
    """What the pipeline needs from durable storage. Every method may raise `StorageError`."""

    def add_events(self, events: Sequence[NewEvent]) -> list[tuple[int, bool]]: ...
    def claim_events(self, limit: int, lease_seconds: float) -> list[StoredEvent]: ...
    def record_outcomes(self, outcomes: Mapping[int, Sequence[NewDelivery]]) -> None: ...
    def replace_outcomes(
        self, event_id: int, transform: str, results: Sequence[NewDelivery]
    ) -> None: ...
    def claim_deliveries(self, limit: int, lease_seconds: float) -> list[Delivery]: ...
    def record_results(self, updates: Sequence[DeliveryUpdate]) -> None: ...
    def release(self, delivery_ids: Sequence[int]) -> None: ...
    def get_event(self, event_id: int) -> StoredEvent | None: ...
    def get_delivery(self, delivery_id: int) -> Delivery | None: ...
    def attempts(self, delivery_id: int) -> list[Attempt]: ...
    def list_deliveries(
        self, status: str | None = None, limit: int = 100, event_id: int | None = None
    ) -> list[Delivery]: ...
    def list_events(self, limit: int = 100) -> list[StoredEvent]: ...
    def counts(self) -> dict[str, int]: ...
    def pending_events(self) -> int: ...
    def prune(self, older_than: float) -> int: ...
    def ping(self) -> None: ...
    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    webhook_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    body BLOB NOT NULL,
    received_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    lease_until REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_by_state ON events (state, lease_until);
CREATE INDEX IF NOT EXISTS events_by_age ON events (received_at);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    transform TEXT NOT NULL,
    version TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0,
    idx INTEGER NOT NULL,
    status TEXT NOT NULL,
    request TEXT,
    logs TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    lease_until REAL NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (event_id, transform, generation, idx)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_by_event ON deliveries (event_id);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    at REAL NOT NULL,
    status_code INTEGER,
    error TEXT,
    duration_ms REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_by_delivery ON attempts (delivery_id);
"""

_DELIVERY_COLUMNS = """
    d.id, d.event_id, e.webhook_id, e.event_type, d.transform, d.version, d.generation, d.idx,
    d.status, d.request, d.logs, d.error, d.attempts, d.next_attempt_at, d.created_at, d.updated_at,
    e.received_at
"""


class SqliteStore:
    """`Store` on one SQLite file. Safe to call from several threads (one lock)."""

    def __init__(
        self,
        path: Path,
        clock: Callable[[], float] = time.time,
        *,
        durable: bool = True,
        claims_work: bool = True,
    ) -> None:
        """Open (or create) the store.

        `durable=False` commits without waiting for the disk. The worker process uses it: all
        it writes (claims, outcomes, attempt results) can be derived again from the events,
        which the HTTP process always commits durably, and redoing it is harmless because
        every message keeps its messageId. `claims_work` marks the one process that takes
        work; it releases, at startup, every lease a previous run left behind.
        """
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
            if claims_work:
                self._db.execute("UPDATE events SET lease_until = 0 WHERE lease_until > 0")
                self._db.execute("UPDATE deliveries SET lease_until = 0 WHERE lease_until > 0")
        except (OSError, sqlite3.Error) as error:
            raise StorageError(f"cannot open the store at {path}: {error}") from None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._atomic() as db:
            yield db

    @contextmanager
    def _atomic(self) -> Iterator[sqlite3.Connection]:
        """One transaction; the caller holds `_lock`."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise StorageError(f"store write failed: {error}") from None
        try:
            yield self._db
            self._db.execute("COMMIT")
        except sqlite3.Error as error:
            self._rollback()
            raise StorageError(f"store write failed: {error}") from None
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        # Fails only when the error already ended the transaction (or closed the database).
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")

    def _read(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(query, params).fetchall()
            except sqlite3.Error as error:
                raise StorageError(f"store read failed: {error}") from None

    def add_events(self, events: Sequence[NewEvent]) -> list[tuple[int, bool]]:
        """Store received events in one transaction: (id, True) for each new one, and
        (id of the stored one, False) for a webhook-id already known."""
        with self._transaction() as db:
            return [self._insert_event(db, event) for event in events]

    def _insert_event(self, db: sqlite3.Connection, event: NewEvent) -> tuple[int, bool]:
        row = db.execute(
            "INSERT INTO events (webhook_id, event_type, body, received_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (webhook_id) DO NOTHING RETURNING id",
            (event.webhook_id, event.event_type, event.body, self._clock()),
        ).fetchone()
        if row is not None:
            return int(row[0]), True
        existing = db.execute(
            "SELECT id FROM events WHERE webhook_id = ?", (event.webhook_id,)
        ).fetchone()
        return int(existing[0]), False

    def claim_events(self, limit: int, lease_seconds: float) -> list[StoredEvent]:
        now = self._clock()
        # Look before taking the write lock: an idle poll must not hold up the intake.
        if not self._read(
            "SELECT 1 FROM events WHERE state = 'pending' AND lease_until <= ? LIMIT 1", (now,)
        ):
            return []
        with self._transaction() as db:
            rows = db.execute(
                "UPDATE events SET lease_until = ? WHERE id IN (SELECT id FROM events"
                " WHERE state = 'pending' AND lease_until <= ? ORDER BY id LIMIT ?)"
                " RETURNING id, webhook_id, event_type, body, received_at",
                (now + lease_seconds, now, limit),
            ).fetchall()
        return sorted((StoredEvent(*row) for row in rows), key=lambda event: event.id)

    def record_outcomes(self, outcomes: Mapping[int, Sequence[NewDelivery]]) -> None:
        """Store every transform's outcome for these events and mark them done, atomically."""
        with self._transaction() as db:
            for event_id, results in outcomes.items():
                self._insert(db, event_id, 0, results)
            db.executemany(
                "UPDATE events SET state = 'done', lease_until = 0 WHERE id = ?",
                [(event_id,) for event_id in outcomes],
            )

    def replace_outcomes(
        self, event_id: int, transform: str, results: Sequence[NewDelivery]
    ) -> None:
        """A replay: supersede one transform's current outcome for an event with a new one."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT COALESCE(MAX(generation), -1) FROM deliveries"
                " WHERE event_id = ? AND transform = ?",
                (event_id, transform),
            ).fetchone()
            generation = int(row[0]) + 1
            db.execute(
                "UPDATE deliveries SET status = 'replayed', updated_at = ?"
                " WHERE event_id = ? AND transform = ? AND status IN ('failed', 'dead')",
                (self._clock(), event_id, transform),
            )
            self._insert(db, event_id, generation, results)

    def _insert(
        self,
        db: sqlite3.Connection,
        event_id: int,
        generation: int,
        results: Sequence[NewDelivery],
    ) -> None:
        now = self._clock()
        db.executemany(
            "INSERT INTO deliveries (event_id, transform, version, generation, idx, status,"
            " request, logs, error, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT DO NOTHING",
            [
                (
                    event_id,
                    item.transform,
                    item.version,
                    generation,
                    item.index,
                    item.status,
                    None if item.request is None else json.dumps(item.request),
                    json.dumps(item.logs or []),
                    item.error,
                    now,
                    now,
                )
                for item in results
            ],
        )

    def claim_deliveries(self, limit: int, lease_seconds: float) -> list[Delivery]:
        now = self._clock()
        if not self._read(
            "SELECT 1 FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ?"
            " AND lease_until <= ? LIMIT 1",
            (now, now),
        ):
            return []
        with self._transaction() as db:
            ids = [
                row[0]
                for row in db.execute(
                    "UPDATE deliveries SET lease_until = ? WHERE id IN (SELECT id FROM deliveries"
                    " WHERE status = 'pending' AND next_attempt_at <= ? AND lease_until <= ?"
                    " ORDER BY next_attempt_at, id LIMIT ?) RETURNING id",
                    (now + lease_seconds, now, now, limit),
                ).fetchall()
            ]
            if not ids:
                return []
            rows = db.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id"
                f" WHERE d.id IN ({','.join('?' * len(ids))}) ORDER BY d.id",
                ids,
            ).fetchall()
        return [_delivery(row) for row in rows]

    def record_results(self, updates: Sequence[DeliveryUpdate]) -> None:
        """Store attempts and new statuses for a round of deliveries, releasing their leases."""
        now = self._clock()
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO attempts (delivery_id, at, status_code, error, duration_ms)"
                " VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        u.delivery_id,
                        u.attempt.at,
                        u.attempt.status_code,
                        u.attempt.error,
                        u.attempt.duration_ms,
                    )
                    for u in updates
                    if u.attempt is not None
                ],
            )
            db.executemany(
                "UPDATE deliveries SET status = ?, error = ?, next_attempt_at = ?, lease_until = 0,"
                " attempts = attempts + ?, updated_at = ?,"
                " request = COALESCE(?, request) WHERE id = ?",
                [
                    (
                        u.status,
                        u.error,
                        u.next_attempt_at,
                        0 if u.attempt is None else 1,
                        now,
                        None if u.request is None else json.dumps(u.request),
                        u.delivery_id,
                    )
                    for u in updates
                ],
            )

    def release(self, delivery_ids: Sequence[int]) -> None:
        with self._transaction() as db:
            db.executemany(
                "UPDATE deliveries SET lease_until = 0 WHERE id = ?", [(i,) for i in delivery_ids]
            )

    def get_event(self, event_id: int) -> StoredEvent | None:
        rows = self._read(
            "SELECT id, webhook_id, event_type, body, received_at FROM events WHERE id = ?",
            (event_id,),
        )
        return StoredEvent(*rows[0]) if rows else None

    def list_events(self, limit: int = 100) -> list[StoredEvent]:
        rows = self._read(
            "SELECT id, webhook_id, event_type, body, received_at FROM events"
            " ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [StoredEvent(*row) for row in rows]

    def get_delivery(self, delivery_id: int) -> Delivery | None:
        rows = self._read(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id"
            " WHERE d.id = ?",
            (delivery_id,),
        )
        return _delivery(rows[0]) if rows else None

    def attempts(self, delivery_id: int) -> list[Attempt]:
        rows = self._read(
            "SELECT at, status_code, error, duration_ms FROM attempts"
            " WHERE delivery_id = ? ORDER BY id",
            (delivery_id,),
        )
        return [Attempt(*row) for row in rows]

    def list_deliveries(
        self, status: str | None = None, limit: int = 100, event_id: int | None = None
    ) -> list[Delivery]:
        conditions: list[str] = []
        params: list[Any] = []
        if status is not None:
            conditions.append("d.status = ?")
            params.append(status)
        if event_id is not None:
            conditions.append("d.event_id = ?")
            params.append(event_id)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self._read(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id"
            f" {where} ORDER BY d.id DESC LIMIT ?",
            [*params, limit],
        )
        return [_delivery(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """Deliveries by status."""
        rows = self._read("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
        return {status: int(count) for status, count in rows}

    def pending_events(self) -> int:
        rows = self._read("SELECT COUNT(*) FROM events WHERE state = 'pending'")
        return int(rows[0][0])

    def prune(self, older_than: float) -> int:
        """Delete events received before `older_than` (and their records) once settled."""
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM events WHERE received_at < ? AND state = 'done' AND NOT EXISTS"
                " (SELECT 1 FROM deliveries d WHERE d.event_id = events.id"
                " AND d.status = 'pending')",
                (older_than,),
            )
            return cursor.rowcount

    def ping(self) -> None:
        self._read("SELECT 1")

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _shown(request: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored request fit for an API answer: credentials in headers redacted."""
    if request is None:
        return None
    return request | {"headers": redact_headers(request.get("headers") or {})}


def _delivery(row: Sequence[Any]) -> Delivery:
    values = list(row)
    values[9] = None if values[9] is None else json.loads(values[9])
    values[10] = json.loads(values[10])
    return Delivery(*values)
