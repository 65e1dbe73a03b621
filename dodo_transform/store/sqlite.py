"""`Store` on embedded SQLite: one file in WAL mode with `synchronous=FULL`.

A returned call is on disk. Work is claimed with a lease: a claimed event or delivery carries
`lease_until`, and a worker that dies simply lets the lease run out. One
process claims work (the worker), so at its startup it releases every lease at
once; the HTTP process opens the same file to store events and answer the
admin API. The schema lives in `migrations.py`.

Ingest goes first. SQLite lets one writer in at a time, and the worker (niced, so
it may hold the write lock while it waits for a CPU) writes often; a webhook that
queues behind it waits for its answer. So the intake holds `priority()` while it
has events to store, and the worker's store (`durable=False`) waits for it to
end, up to `YIELD_SECONDS`, before each of its writes: in a burst the worker's
writes go in between the intake's groups, a few dozen a second, and it catches up
after the burst (its work is safe in the store).

Text goes into SQLite as UTF-8, which a lone surrogate (from a JSON escape such
as `"\ud83d"` in an event's `type`, or in a handler's error) cannot be: such
text is stored with U+FFFD in its place (`outgoing.well_formed`), never
refused, as one unencodable string must not fail a whole group of writes.
Bodies are stored as the raw bytes received, and requests and logs as
ASCII-escaped JSON, so those keep every character exactly.

The files are checked, not assumed. SQLite keeps writing to a database file that was deleted
or replaced under it (its open descriptor still works) and every commit succeeds, into a file
no restart will find. So the store records which files it opened (device and inode of the
database, its WAL and its shared memory) and compares the paths with them: after every group of
events it stores, before ingest answers 2xx (a stat costs microseconds), and in `ping`, which
also says so while the disk is (nearly) full or a write just failed for want of room.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dodo_transform.errors import StorageError
from dodo_transform.outgoing import well_formed
from dodo_transform.store.heartbeats import SqlHeartbeats
from dodo_transform.store.migrations import migrate_sqlite
from dodo_transform.store.reading import DELIVERY_COLUMNS, SqlReads, delivery_from_row
from dodo_transform.store.records import (
    REPLAYABLE_STATUSES,
    Delivery,
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
from dodo_transform.store.writing import ERASE_CHUNK, SqlWrites, json_or_none, request_json

_REPLAYABLE = tuple(str(status) for status in REPLAYABLE_STATUSES)
_REPLAYABLE_MARKS = ",".join("?" * len(_REPLAYABLE))
# How long the worker's store waits, before a write, for the intake's `priority()` to end.
# Under a burst the intake holds it all along, so this is the worker's pace then: 0.1 s held
# the worker to ten writes a second of each kind and its lanes idle waiting for them, while
# 0.02 s changed ingest by nothing measurable (bench_ingest 0.42 -> 0.43 of the ceiling, and
# bench_pipeline's end to end 0.41 -> 0.44 of ingest, in the same run).
YIELD_SECONDS = 0.02
ERASURE_CHECKPOINT_TRIES = 50  # 5 s of tries to truncate the WAL after an erasure
# Less room than this left on the disk is full: the next webhook (up to 1 MiB) may not fit.
MIN_FREE_BYTES = 8 * 1024 * 1024
# How long `ping` reports a write that failed for want of room, unless one succeeds first: long
# enough to be seen, short enough that a readiness probe that takes the instance out of service
# (so no write comes to succeed) lets it back in to try.
FULL_SECONDS = 60.0
# SQLite's primary result codes for a full disk (ENOSPC) and a failed write (EFBIG, EDQUOT, EIO).
_NO_ROOM = (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR)

log = logging.getLogger("dodo_transform.store")


class SqliteStore(SqlReads, SqlWrites, SqlSessions, SqlHeartbeats):
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

        `durable=False` commits without waiting for the disk, and gives way to the intake
        (see `priority`). The worker process uses it: all
        it writes (claims, outcomes, attempt results) can be derived again from the events,
        which the HTTP process always commits durably, and redoing it is harmless because
        every message keeps its messageId. `claims_work` marks the one process that takes
        work; it releases, at startup, every lease a previous run left behind.
        """
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._gives_way = not durable
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # It holds customers' emails: owner only (SQLite gives its WAL the same mode), also
            # for a file an older release made 0644.
            path.touch(mode=0o600)
            with contextlib.suppress(OSError):
                path.chmod(0o600)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=5000")
            # What a delete or an update frees is overwritten with zeros: an erased customer's
            # email is not left in a free page or a page's free space (see erasure.py).
            self._db.execute("PRAGMA secure_delete=ON")
            migrate_sqlite(self._db)
            if claims_work:
                self._db.execute("UPDATE events SET lease_until = 0 WHERE lease_until > 0")
                self._db.execute("UPDATE deliveries SET lease_until = 0 WHERE lease_until > 0")
            # What `priority` locks (flock, which leaves SQLite's own fcntl locks alone).
            self._gate = os.open(f"{path}-ingest", os.O_RDWR | os.O_CREAT, 0o600)
            # SQLite holds these open while any connection is: their inodes stay ours.
            self._files = opened_files(path)
        except (OSError, sqlite3.Error) as error:
            raise StorageError(f"cannot open the store at {path}: {error}") from None
        self._lost: str | None = None  # why the files can no longer be trusted (logged once)
        self._no_room: tuple[float, str] | None = None  # when a write last failed, and why

    def ping(self) -> None:
        """Raise `StorageError` unless the store can take events now: its files are the ones
        it opened, there is room on the disk, and it answers."""
        self.check_files()
        self._check_room()
        self._read("SELECT 1")

    def check_files(self) -> None:
        """Raise `StorageError` if the database, its WAL or its shared memory was removed or
        replaced since the store opened them: what is committed now would be lost."""
        for file, identity in self._files.items():
            problem = file_changed(file, identity)
            if problem is None:
                continue
            if self._lost is None:
                self._lost = problem
                log.error("the store's files changed under it", extra={"problem": problem})
            raise StorageError(problem)

    def _check_room(self) -> None:
        failed = self._no_room
        if failed is not None and time.monotonic() - failed[0] < FULL_SECONDS:
            raise StorageError(
                f"writing to the store at {self.path} failed ({failed[1]}): the disk may be full"
            )
        free = free_bytes(self.path.parent)
        if free is not None and free < MIN_FREE_BYTES:
            raise StorageError(
                f"the disk holding the store at {self.path} is full ({free // 1024} KiB free)"
            )

    def _note_write(self, error: sqlite3.Error | None) -> None:
        """Remember a write that failed for want of room, until one succeeds."""
        if error is None:
            self._no_room = None
        elif getattr(error, "sqlite_errorcode", 0) & 0xFF in _NO_ROOM:  # none: a closed store
            self._no_room = (time.monotonic(), str(error))

    @contextmanager
    def priority(self) -> Iterator[None]:
        """Held by the intake while it has events to store: the worker's store waits for it
        to end (up to `YIELD_SECONDS`) before each write, so ingest does not queue behind
        the worker for SQLite's write lock. Without a lock to take, ingest goes on as usual."""
        try:
            fcntl.flock(self._gate, fcntl.LOCK_EX)
        except (OSError, ValueError):  # ValueError: the store is closed
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(self._gate, fcntl.LOCK_UN)

    def _give_way(self) -> None:
        """Wait, up to `YIELD_SECONDS`, until the intake holds no `priority`."""
        deadline = time.monotonic() + YIELD_SECONDS
        while True:
            try:
                fcntl.flock(self._gate, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return
                time.sleep(0.002)
            except (OSError, ValueError):
                return
            else:
                fcntl.flock(self._gate, fcntl.LOCK_UN)
                return

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self._gives_way:
            self._give_way()
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

    def _write(self, statements: Sequence[Statement]) -> list[Any]:
        rows: list[Any] = []
        with self._transaction() as db:
            for query, params in statements:
                rows = db.execute(query, params).fetchall()
        return rows

    def add_events(self, events: Sequence[NewEvent]) -> list[tuple[int, bool]]:
        """Store received events in one transaction: (id, True) for each new one, and
        (id of the stored one, False) for a webhook-id already known.

        The group is one INSERT run as its own transaction (one step, one fsync), and the
        stored ids are asked for only when some webhook-id was already there: the intake's
        writer thread gives the interpreter lock back at every statement, and under load
        waits to get it back each time, so a group costs as few statements as it can.
        """
        if not events:
            return []
        rows = [
            (well_formed(e.webhook_id), well_formed(e.event_type), e.body, e.mode) for e in events
        ]
        now = self._clock()
        with self._lock:
            try:
                cursor = self._db.execute(
                    "INSERT INTO events (webhook_id, event_type, body, mode, received_at) VALUES "
                    + ",".join(["(?, ?, ?, ?, ?)"] * len(rows))
                    + " ON CONFLICT (webhook_id) DO NOTHING",
                    [value for row in rows for value in (*row, now)],
                )
                created, last = cursor.rowcount, cursor.lastrowid or 0
                stored = {} if created == len(rows) else self._stored_ids([row[0] for row in rows])
            except sqlite3.Error as error:
                self._note_write(error)
                raise StorageError(f"store write failed: {error}") from None
            self._note_write(None)
        # Committed, but into the file a restart opens? Only then may ingest answer 2xx.
        self.check_files()
        if created == len(rows):
            # All new: SQLite gives each row the largest rowid so far plus one, in the order of
            # VALUES, so the ids are the `created` ones ending at `last`.
            return [(last - created + 1 + n, True) for n in range(created)]
        return _group_results(rows, stored, first_new=last - created + 1 if created else None)

    def _stored_ids(self, webhook_ids: list[str]) -> dict[str, int]:
        unique = list(dict.fromkeys(webhook_ids))
        (found,) = self._db.execute(
            "SELECT json_group_object(webhook_id, id) FROM events"
            f" WHERE webhook_id IN ({','.join('?' * len(unique))})",
            unique,
        ).fetchone()
        stored: dict[str, int] = json.loads(found)
        return stored

    def claim_events(self, limit: int, lease_seconds: float) -> list[StoredEvent]:
        now = self._clock()
        # Look before taking the write lock: an idle poll must not hold up the intake.
        if not self._read(
            "SELECT 1 FROM events WHERE state = 'pending' AND lease_until <= ? LIMIT 1", (now,)
        ):
            return []
        claim = new_claim()
        with self._transaction() as db:
            rows = db.execute(
                "UPDATE events SET lease_until = ?, claim = ? WHERE id IN (SELECT id FROM events"
                " WHERE state = 'pending' AND lease_until <= ? ORDER BY id LIMIT ?)"
                " RETURNING id, webhook_id, event_type, body, received_at, claim, mode",
                (now + lease_seconds, claim, now, limit),
            ).fetchall()
        return sorted((StoredEvent(*row) for row in rows), key=lambda event: event.id)

    def record_outcomes(
        self,
        outcomes: Mapping[int, Sequence[NewDelivery]],
        claims: Mapping[int, int] | None = None,
        hand_off: HandOff | None = None,
        terms: Mapping[int, Sequence[str]] | None = None,
    ) -> Recorded:
        """Store every transform's outcome for these events and mark them done, atomically.

        With `claims` (event id -> the claim it was taken under), an event no longer held
        under that claim (its lease ran out and it was claimed again) keeps what it has: its
        outcome is dropped, and its id is returned. The deliveries `hand_off` names are
        stored claimed under it, and their ids returned.
        """
        pairs = self._terms(list(outcomes), terms or {})
        with self._transaction() as db:
            if claims is None:
                dropped = []
            else:
                held = self._held_events(db, list(outcomes))
                dropped = [e for e in outcomes if held.get(e) != claims[e]]
            gone = set(dropped)
            done = {e: results for e, results in outcomes.items() if e not in gone}
            db.executemany(
                "UPDATE events SET state = 'done', lease_until = 0 WHERE id = ?",
                [(event_id,) for event_id in done],
            )
            handed = self._insert(db, done, 0, hand_off)
            self._insert_terms(db, [pair for pair in pairs if pair[1] in done])
        return Recorded(dropped, handed)

    def claim_deliveries(self, rooms: Mapping[Lane, int], lease_seconds: float) -> list[Delivery]:
        """Claim up to `rooms[lane]` due deliveries of each lane, oldest due first."""
        now = self._clock()
        due = "status = ? AND transform = ? AND destination = ? AND next_attempt_at <= ?"
        due += " AND lease_until <= ?"
        # Look before taking the write lock: an idle poll must not hold up the intake.
        wanted = [
            (lane, room)
            for lane, room in rooms.items()
            if room > 0
            and self._read(
                f"SELECT 1 FROM deliveries WHERE {due} LIMIT 1",
                (DeliveryStatus.PENDING, *lane, now, now),
            )
        ]
        if not wanted:
            return []
        claim = new_claim()
        with self._transaction() as db:
            ids = [
                row[0]
                for lane, room in wanted
                for row in db.execute(
                    "UPDATE deliveries SET lease_until = ?, claim = ? WHERE id IN"
                    f" (SELECT id FROM deliveries WHERE {due}"
                    " ORDER BY next_attempt_at, id LIMIT ?) RETURNING id",
                    (now + lease_seconds, claim, DeliveryStatus.PENDING, *lane, now, now, room),
                ).fetchall()
            ]
            if not ids:
                return []
            rows = db.execute(
                f"SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id"
                f" WHERE d.id IN ({','.join('?' * len(ids))}) ORDER BY d.id",
                ids,
            ).fetchall()
        return [delivery_from_row(row) for row in rows]

    def record_results(self, updates: Sequence[DeliveryUpdate]) -> list[DeliveryUpdate]:
        """Store attempts and new statuses for deliveries, releasing their leases.

        An update made under a claim the delivery is no longer held under (its lease ran out
        and it was claimed again) is dropped, not laid over the newer claim's work: those are
        returned. An update without an attempt or an error keeps the stored error (a delivery
        given back unsent still says why it last failed).
        """
        now = self._clock()
        with self._transaction() as db:
            applied, dropped = self._fenced(db, updates)
            # One statement for them all: each update's row was checked above, in this
            # transaction, so no per-row count is needed (a burst records thousands).
            cursor = db.executemany(
                "UPDATE deliveries SET status = ?, error = CASE WHEN ? THEN error ELSE ? END,"
                " next_attempt_at = ?,"
                " lease_until = 0, attempts = attempts + ?, updated_at = ?,"
                " request = COALESCE(?, request), sent_headers = COALESCE(?, sent_headers)"
                " WHERE id = ?",
                [
                    (
                        u.status,
                        keeps_error(u),
                        _text(u.error),
                        u.next_attempt_at,
                        0 if u.attempt is None else 1,
                        now,
                        request_json(u.request),
                        json_or_none(u.sent_headers),
                        u.delivery_id,
                    )
                    for u in applied
                ],
            )
            if cursor.rowcount != len(applied):  # an unfenced update of a row that is gone
                found = self._existing(db, [u.delivery_id for u in applied])
                dropped += [u for u in applied if u.delivery_id not in found]
            gone = {id(u) for u in dropped}
            db.executemany(
                "INSERT INTO attempts (delivery_id, at, status_code, error, duration_ms)"
                " VALUES (?, ?, ?, ?, ?)",
                [
                    (u.delivery_id, a.at, a.status_code, _text(a.error), a.duration_ms)
                    for u in applied
                    if (a := u.attempt) is not None and id(u) not in gone
                ],
            )
        return dropped

    def _held_events(self, db: sqlite3.Connection, event_ids: Sequence[int]) -> dict[int, int]:
        """The claim each of these events is pending under (those not pending are left out)."""
        query = "SELECT id, claim FROM events WHERE state = 'pending' AND id IN"
        return dict(_rows_by_id(db, query, event_ids))

    def _fenced(
        self, db: sqlite3.Connection, updates: Sequence[DeliveryUpdate]
    ) -> tuple[list[DeliveryUpdate], list[DeliveryUpdate]]:
        """(the updates to apply, those dropped): an update under a claim applies while its
        delivery is still pending under that claim, as it would be after the updates before
        it in the list (one that settled the delivery drops a later one)."""
        held = self._held_deliveries(db, updates)
        settled: set[int] = set()
        applied, dropped = [], []
        for u in updates:
            if u.claim is not None and (
                (u.delivery_id, u.claim) not in held or u.delivery_id in settled
            ):
                dropped.append(u)
                continue
            applied.append(u)
            if u.status != DeliveryStatus.PENDING:
                settled.add(u.delivery_id)
        return applied, dropped

    def _held_deliveries(
        self, db: sqlite3.Connection, updates: Sequence[DeliveryUpdate]
    ) -> set[tuple[int, int]]:
        """(id, claim) of the fenced updates' deliveries still pending under a claim."""
        ids = sorted({u.delivery_id for u in updates if u.claim is not None})
        query = "SELECT id, claim FROM deliveries WHERE status = 'pending' AND id IN"
        return {(delivery_id, claim) for delivery_id, claim in _rows_by_id(db, query, ids)}

    def _existing(self, db: sqlite3.Connection, ids: Sequence[int]) -> set[int]:
        return {row[0] for row in _rows_by_id(db, "SELECT id FROM deliveries WHERE id IN", ids)}

    def release(self, delivery_ids: Sequence[int]) -> None:
        with self._transaction() as db:
            db.executemany(
                "UPDATE deliveries SET lease_until = 0 WHERE id = ?", [(i,) for i in delivery_ids]
            )

    def renew(self, lease_seconds: float) -> int:
        """Extend every live lease: one process claims work here, so they are all its own."""
        now = self._clock()
        with self._transaction() as db:
            return sum(
                db.execute(
                    f"UPDATE {table} SET lease_until = ? WHERE lease_until > ? AND {unfinished}",
                    (now + lease_seconds, now),
                ).rowcount
                for table, unfinished in (
                    ("events", "state = 'pending'"),
                    ("deliveries", f"status = '{DeliveryStatus.PENDING.value}'"),
                    ("replays", "done_at IS NULL"),
                )
            )

    def live_workers(self, within_seconds: float) -> int:
        """One: only one process claims work on SQLite."""
        return 1

    def listen(self, wake: Callable[[bool], None]) -> None:
        """SQLite cannot tell one process about another's writes: the pipeline polls."""
        return None

    def claim_replays(self, limit: int, lease_seconds: float) -> list[ReplayRequest]:
        now = self._clock()
        if not self._read(
            "SELECT 1 FROM replays WHERE done_at IS NULL AND lease_until <= ? LIMIT 1", (now,)
        ):
            return []
        with self._transaction() as db:
            rows = db.execute(
                "UPDATE replays SET lease_until = ? WHERE delivery_id IN (SELECT delivery_id"
                " FROM replays WHERE done_at IS NULL AND lease_until <= ?"
                " ORDER BY requested_at LIMIT ?) RETURNING delivery_id, requested_at",
                (now + lease_seconds, now, limit),
            ).fetchall()
        return sorted((ReplayRequest(*row) for row in rows), key=lambda r: r.requested_at)

    def _after_erasure(self) -> bool:
        """Copy the WAL into the database and truncate it, so the pages that held the erased
        rows are not kept there; False if a reader (the other process) holds it now (it is
        checkpointed then as usual, later)."""
        for _ in range(ERASURE_CHECKPOINT_TRIES):
            with self._lock:
                try:
                    (busy, *_) = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                except sqlite3.Error as error:
                    raise StorageError(f"store checkpoint failed: {error}") from None
            if not busy:
                return True
            time.sleep(0.1)
        return False

    # --- backfills (reads are in reading.py) --------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._gate >= 0:
                os.close(self._gate)
                self._gate = -1


def opened_files(path: Path) -> dict[Path, tuple[int, int]]:
    """The device and inode of the database and of the WAL and shared memory beside it (those
    that exist: a connection in WAL mode makes both)."""
    found = {}
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError):
            stat = file.stat()
            found[file] = (stat.st_dev, stat.st_ino)
    return found


def file_changed(file: Path, identity: tuple[int, int]) -> str | None:
    """Why `file` is no longer the one with `identity` (removed, replaced); None if it is."""
    try:
        stat = file.stat()
    except FileNotFoundError:
        happened = "was removed"
    except OSError as error:
        return f"cannot check the store's file {file}: {error.strerror}"
    else:
        if (stat.st_dev, stat.st_ino) == identity:
            return None
        happened = "was replaced by another file"
    return (
        f"the store's file {file} {happened} while the service ran: what it stores now would"
        " be lost, so webhooks are answered 503 (Dodo retries them); restart the service"
    )


def free_bytes(folder: Path) -> int | None:
    """Bytes an unprivileged process may still write on the disk holding `folder`."""
    try:
        stat = os.statvfs(folder)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


class MemoryStore(SqliteStore):
    """`Store` in SQLite's memory, for unit tests of the stages: every query is
    `SqliteStore`'s, nothing is on disk (so nothing to check, or to clean up), and nothing
    outlives it."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(":memory:")
        self._clock = clock
        self._lock = threading.Lock()
        self._gives_way = False
        self._db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA foreign_keys=ON")
        migrate_sqlite(self._db)
        self._gate = -1  # no intake elsewhere to give way to
        self._files = {}
        self._lost = None
        self._no_room = None

    def _check_room(self) -> None:
        return None


def _group_results(
    rows: Sequence[tuple[str, str, bytes, str]],
    stored: Mapping[str, int],
    first_new: int | None,
) -> list[tuple[int, bool]]:
    """(id, new?) per event in order: new when its id is one this INSERT created (from
    `first_new` on) and it is the webhook-id's first occurrence in the group."""
    results, seen = [], set()
    for webhook_id, *_ in rows:
        if webhook_id not in stored:  # pruned between the statements; Dodo will retry
            raise StorageError(f"webhook {webhook_id} vanished while being stored")
        event_id = stored[webhook_id]
        new = first_new is not None and event_id >= first_new and webhook_id not in seen
        results.append((event_id, new))
        seen.add(webhook_id)
    return results


def _text(value: str | None) -> str | None:
    return None if value is None else well_formed(value)


def _rows_by_id(db: sqlite3.Connection, query: str, ids: Sequence[int]) -> list[Any]:
    """The rows of `query` (ending in `id IN`) for `ids`, asked a chunk of ids at a time
    (SQLite bounds a statement's parameters)."""
    rows: list[Any] = []
    for start in range(0, len(ids), ERASE_CHUNK):
        chunk = list(ids[start : start + ERASE_CHUNK])
        rows += db.execute(f"{query} ({','.join('?' * len(chunk))})", chunk).fetchall()
    return rows
