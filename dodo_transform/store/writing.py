"""The writes SQLite and PostgreSQL make alike: one SQL text for both, as the reads are shared.

Both stores inherit `SqlWrites` and give `_transaction()` (one transaction, committed on
leaving it, its connection's `execute` returning a cursor with `rowcount`, `fetchone` and
`fetchall`), `_text` (text as the database can hold it) and the few hooks where the dialects
differ: `_lock_event` (PostgreSQL locks the event row; SQLite has one writer at a time),
`_may_prune` (one instance prunes at a time), `_announce` (PostgreSQL's NOTIFY) and
`RELEASED` (what a finished lease sets). The queries are written with `?`.

What is left in each store is what differs by more than that: claims (`FOR UPDATE SKIP
LOCKED` and owners), results and outcomes written in bulk (`unnest` on PostgreSQL), and the
intake's group insert.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, closing
from typing import Any

import orjson

from dodo_transform.outgoing.destination import destination_of
from dodo_transform.outgoing.request import OutgoingRequest, well_formed
from dodo_transform.search_terms import event_terms
from dodo_transform.store.erasure import Erased
from dodo_transform.store.reading import counted_from, replayable_scope
from dodo_transform.store.records import (
    REPLAYABLE_STATUSES,
    AuditEntry,
    DeliveryKey,
    DeliveryStatus,
    HandOff,
    NewDelivery,
    ReplayMode,
    TransformVersion,
)
from dodo_transform.store.search import Filters

_REPLAYABLE = tuple(status.value for status in REPLAYABLE_STATUSES)
ERASE_CHUNK = 500  # events deleted per statement
ERASED = "(erased)"  # what a bulk replay's search for an erased customer shows
INSERTED_COLUMNS = (
    "event_id",
    "transform",
    "version",
    "generation",
    "idx",
    "status",
    "request",
    "logs",
    "error",
    "created_at",
    "updated_at",
    "destination",
)
_REPLAYABLE_IN = f"({','.join('?' * len(_REPLAYABLE))})"


class SqlWrites:
    placeholder = "?"
    # What a finished lease's row is set to (PostgreSQL also forgets the owner).
    RELEASED = "lease_until = 0"
    # What holds a claimed delivery (PostgreSQL also names the instance holding it).
    HELD_COLUMNS: tuple[str, ...] = ("claim", "lease_until")
    _unheld: tuple[Any, ...] = (0, 0.0)
    _clock: Callable[[], float]

    # --- what each store gives --------------------------------------------------------------

    def _transaction(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _text(self, value: str) -> str:
        """Text as this database can hold it (see each store)."""
        return well_formed(value)

    def _lock_event(self, db: Any, event_id: int) -> None:
        """Make concurrent replays of one event take their turns (no-op: one writer)."""

    def _may_prune(self, db: Any) -> bool:
        return True

    def _announce(self, db: Any, what: str) -> None:
        """Tell other instances that `what` was stored (no-op: one instance)."""

    def _sql(self, query: str) -> str:
        return query.replace("?", self.placeholder)

    # --- shared writes ------------------------------------------------------------------------

    def _terms(
        self, event_ids: Sequence[int], known: Mapping[int, Sequence[str]]
    ) -> list[tuple[str, int]]:
        """The search terms of these events, as (term, event id) pairs (see search_terms.py):
        those `known` gives (the transform stage's, worked out in the sandbox processes), the
        rest made from the bodies, read back.

        The transform stage stores them with the events' outcomes: not on the intake's path,
        where each webhook's answer would wait for them; and made before the outcomes'
        transaction, so SQLite's write lock is not held meanwhile."""
        pairs = [(term, event_id) for event_id in event_ids for term in known.get(event_id, ())]
        missing = sorted(set(event_ids) - known.keys())
        for start in range(0, len(missing), ERASE_CHUNK):
            chunk = missing[start : start + ERASE_CHUNK]
            bodies = self._read(
                self._sql(
                    "SELECT id, webhook_id, body FROM events"
                    f" WHERE id IN ({','.join('?' * len(chunk))})"
                ),
                chunk,
            )
            pairs += [
                (term, event_id)
                for event_id, webhook_id, body in bodies
                for term in event_terms(webhook_id, _bytes(body))
            ]
        return pairs

    def _read(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def _insert_terms(self, db: Any, pairs: Sequence[tuple[str, int]]) -> None:
        if not pairs:
            return
        with closing(db.cursor()) as cursor:
            cursor.executemany(
                self._sql(
                    "INSERT INTO event_terms (term, event_id) VALUES (?, ?) ON CONFLICT DO NOTHING"
                ),
                pairs,
            )

    def _insert(
        self,
        db: Any,
        outcomes: Mapping[int, Sequence[NewDelivery]],
        generation: int = 0,
        hand_off: HandOff | None = None,
    ) -> dict[DeliveryKey, int]:
        """Store deliveries for events (a generation of each one's outcome), in one statement;
        those `hand_off` names claimed under it. The ids of those, by key."""
        now = float(self._clock())  # each column's values of one type (PostgreSQL's arrays)
        rows = [
            self._delivery_row(event_id, generation, item, now)
            + self._held_values(event_id, item, hand_off)
            for event_id, results in outcomes.items()
            for item in results
        ]
        return self._insert_rows(db, rows, hand_off) if rows else {}

    def _insert_rows(
        self, db: Any, rows: list[tuple[Any, ...]], hand_off: HandOff | None
    ) -> dict[DeliveryKey, int]:
        """Insert rows of `INSERTED_COLUMNS` (a delivery already stored is kept); the ids of
        those stored under the hand-off's claim."""
        columns = ", ".join(INSERTED_COLUMNS + self.HELD_COLUMNS)
        with closing(db.cursor()) as cursor:
            cursor.executemany(
                f"INSERT INTO deliveries ({columns})"
                f" VALUES ({', '.join('?' * len(rows[0]))}) ON CONFLICT DO NOTHING",
                rows,
            )
        if hand_off is None or not hand_off.keys:
            return {}
        event_ids = sorted({row[0] for row in rows})
        found = db.execute(
            "SELECT event_id, transform, idx, id FROM deliveries WHERE generation = 0"
            f" AND claim = ? AND event_id IN ({', '.join('?' * len(event_ids))})",
            (hand_off.claim, *event_ids),
        ).fetchall()
        return {DeliveryKey(*row[:3]): row[3] for row in found}

    def _held_values(
        self, event_id: int, item: NewDelivery, hand_off: HandOff | None
    ) -> tuple[Any, ...]:
        """The values of `HELD_COLUMNS` for a new delivery: claimed if the hand-off names it."""
        if (
            hand_off is None
            or item.status is not DeliveryStatus.PENDING
            or DeliveryKey(event_id, item.transform, item.index) not in hand_off.keys
        ):
            return self._unheld
        return self._held_by(hand_off)

    def _held_by(self, hand_off: HandOff) -> tuple[Any, ...]:
        return (hand_off.claim, float(hand_off.lease_until))

    def _delivery_row(
        self, event_id: int, generation: int, item: NewDelivery, now: float
    ) -> tuple[Any, ...]:
        """A row of `INSERTED_COLUMNS`."""
        request = item.request
        return (
            event_id,
            self._text(item.transform),
            self._text(item.version),
            generation,
            item.index,
            str(item.status),
            request_json(request),
            stored_json(item.logs or []),
            None if item.error is None else self._text(item.error),
            now,
            now,
            "" if request is None else self._text(destination_of(request.url)),
        )

    def replace_outcomes(
        self,
        event_id: int,
        transform: str,
        results: Sequence[NewDelivery],
        replacing: int | None = None,
    ) -> bool:
        """A replay: supersede one transform's current outcome for an event with a new one.

        With `replacing` (the delivery replayed), only while that delivery is still one to
        replay: a second replay of it (another worker, or this one after its claim ran out)
        stores nothing and returns False."""
        transform = self._text(transform)
        with self._transaction() as db:
            self._lock_event(db, event_id)
            if (
                replacing is not None
                and not db.execute(
                    self._sql(
                        f"SELECT 1 FROM deliveries WHERE id = ? AND status IN {_REPLAYABLE_IN}"
                    ),
                    (replacing, *_REPLAYABLE),
                ).fetchone()
            ):
                return False
            (latest,) = db.execute(
                self._sql(
                    "SELECT COALESCE(MAX(generation), -1) FROM deliveries"
                    " WHERE event_id = ? AND transform = ?"
                ),
                (event_id, transform),
            ).fetchone()
            db.execute(
                self._sql(
                    "UPDATE deliveries SET status = ?, updated_at = ?"
                    f" WHERE event_id = ? AND transform = ? AND status IN {_REPLAYABLE_IN}"
                ),
                (DeliveryStatus.REPLAYED.value, self._clock(), event_id, transform, *_REPLAYABLE),
            )
            self._insert(db, {event_id: results}, int(latest) + 1)
        return True

    # --- replays: asked for by the web edge, run by a worker ----------------------------------

    def request_replays(self, delivery_ids: Sequence[int]) -> None:
        """Ask a worker to replay these deliveries; asking again redoes a finished request."""
        now = self._clock()
        with self._transaction() as db, closing(db.cursor()) as cursor:
            cursor.executemany(
                self._sql(
                    "INSERT INTO replays (delivery_id, requested_at) VALUES (?, ?)"
                    f" ON CONFLICT (delivery_id) DO UPDATE SET {self.RELEASED},"
                    " requested_at = excluded.requested_at, done_at = NULL, statuses = NULL,"
                    " error = NULL WHERE replays.done_at IS NOT NULL"
                ),
                [(delivery_id, now) for delivery_id in delivery_ids],
            )
            self._announce(db, "replays")

    def finish_replay(
        self, delivery_id: int, statuses: Sequence[DeliveryStatus], error: str | None
    ) -> None:
        with self._transaction() as db:
            db.execute(
                self._sql(
                    f"UPDATE replays SET done_at = ?, {self.RELEASED}, statuses = ?, error = ?"
                    " WHERE delivery_id = ?"
                ),
                (
                    self._clock(),
                    json.dumps([str(status) for status in statuses]),
                    None if error is None else self._text(error),
                    delivery_id,
                ),
            )

    # --- bulk replays (reads are in reading.py) ------------------------------------------------

    def start_bulk_replay(self, filters: Filters, mode: ReplayMode) -> int:
        """Record a bulk replay of the deliveries `filters` choose now (those stored later are
        not its), counting them; its id."""
        with self._transaction() as db:
            (last,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM deliveries").fetchone()
            where, params = replayable_scope(filters, 0, int(last))
            (total,) = db.execute(
                self._sql(f"SELECT COUNT(*) FROM {counted_from(filters)} WHERE {where}"),
                params,
            ).fetchone()
            (bulk_id,) = db.execute(
                self._sql(
                    "INSERT INTO bulk_replays (filters, mode, total, last_delivery_id, created_at)"
                    " VALUES (?, ?, ?, ?, ?) RETURNING id"
                ),
                (json.dumps(filters.to_json()), mode.value, int(total), int(last), self._clock()),
            ).fetchone()
            self._announce(db, "replays")
        return int(bulk_id)

    def advance_bulk_replay(
        self, bulk_id: int, cursor: int, to: int, done: int, replayed: int
    ) -> bool:
        """Move a bulk replay's cursor from `cursor` to `to`, counting what a step did; False
        if another worker moved it first. A cancelled one still counts what its last step
        did: the numbers stay true."""
        with self._transaction() as db:
            moved = db.execute(
                self._sql(
                    "UPDATE bulk_replays SET cursor = ?, done = done + ?, replayed = replayed + ?"
                    " WHERE id = ? AND cursor = ?"
                ),
                (to, done, replayed, bulk_id, cursor),
            ).rowcount
        return bool(moved)

    def finish_bulk_replay(self, bulk_id: int, error: str | None) -> None:
        with self._transaction() as db:
            db.execute(
                self._sql(
                    "UPDATE bulk_replays SET done_at = ?, error = ?"
                    " WHERE id = ? AND done_at IS NULL"
                ),
                (self._clock(), None if error is None else self._text(error), bulk_id),
            )

    def cancel_bulk_replay(self, bulk_id: int) -> bool:
        """Stop a bulk replay that is still running; False if it had ended."""
        now = self._clock()
        with self._transaction() as db:
            cancelled = db.execute(
                self._sql(
                    "UPDATE bulk_replays SET cancelled_at = ?, done_at = ?"
                    " WHERE id = ? AND done_at IS NULL"
                ),
                (now, now, bulk_id),
            ).rowcount
        return bool(cancelled)

    def resend_original(self, delivery_id: int) -> bool:
        """Replay a delivery by sending its stored request again, exactly as first made (with
        those of its siblings of the same event and transform that may be replayed too, as a
        replay by transform does): copies, pending, in a new generation, and the originals
        marked replayed. False if it may not be replayed (any more) or has no request."""
        replayable = f"status IN {_REPLAYABLE_IN} AND request IS NOT NULL"
        with self._transaction() as db:
            found = db.execute(
                self._sql(
                    f"SELECT event_id, transform FROM deliveries WHERE id = ? AND {replayable}"
                ),
                (delivery_id, *_REPLAYABLE),
            ).fetchone()
            if found is None:
                return False
            event_id, transform = found
            self._lock_event(db, event_id)
            siblings = db.execute(
                self._sql(
                    "SELECT id, version, idx, request FROM deliveries"
                    f" WHERE event_id = ? AND transform = ? AND {replayable} ORDER BY idx"
                ),
                (event_id, transform, *_REPLAYABLE),
            ).fetchall()
            if delivery_id not in {row[0] for row in siblings}:
                return False  # replayed meanwhile, by another worker
            (latest,) = db.execute(
                self._sql(
                    "SELECT MAX(generation) FROM deliveries WHERE event_id = ? AND transform = ?"
                ),
                (event_id, transform),
            ).fetchone()
            db.execute(
                self._sql(
                    "UPDATE deliveries SET status = ?, updated_at = ?"
                    f" WHERE id IN ({','.join('?' * len(siblings))})"
                ),
                (DeliveryStatus.REPLAYED.value, self._clock(), *(row[0] for row in siblings)),
            )
            copies = [
                NewDelivery(
                    transform,
                    version,
                    index,
                    DeliveryStatus.PENDING,
                    OutgoingRequest.from_json(json.loads(request)),
                )
                for _, version, index, request in siblings
            ]
            self._insert(db, {event_id: copies}, int(latest) + 1)
        return True

    # --- backfills (reads are in reading.py) --------------------------------------------------

    def start_backfill(
        self, transform: str, event_types: Sequence[str] | None, since: float | None
    ) -> int:
        """Record a backfill of the events stored so far; its id."""
        types = None if event_types is None else json.dumps(list(event_types))
        with self._transaction() as db:
            (backfill_id,) = db.execute(
                self._sql(
                    "INSERT INTO backfills (transform, event_types, since, last_event_id,"
                    " created_at) SELECT ?, ?, ?, COALESCE(MAX(id), 0), ? FROM events"
                    " RETURNING id"
                ),
                (self._text(transform), types, since, self._clock()),
            ).fetchone()
            self._announce(db, "backfills")
        return int(backfill_id)

    def advance_backfill(
        self, backfill_id: int, cursor: int, to: int, outcomes: Mapping[int, Sequence[NewDelivery]]
    ) -> bool:
        """Store a step's outcomes and move the cursor from `cursor` to `to`, atomically;
        False (nothing stored) if another worker moved it first.

        The moved row stays locked until commit, so a second worker's step waits, then finds
        the cursor moved. An event may have a delivery from the transform by now (a second
        backfill of it ran first): it keeps that one."""
        with self._transaction() as db:
            moved = db.execute(
                self._sql(
                    "UPDATE backfills SET cursor = ?, ran = ran + ? WHERE id = ? AND cursor = ?"
                    " AND done_at IS NULL"
                ),
                (to, len(outcomes), backfill_id, cursor),
            ).rowcount
            if not moved:
                return False
            taken = self._with_deliveries_of(db, backfill_id, list(outcomes))
            self._insert(db, {e: results for e, results in outcomes.items() if e not in taken})
        return True

    def _with_deliveries_of(self, db: Any, backfill_id: int, event_ids: list[int]) -> set[int]:
        """Those of `event_ids` the backfill's transform has a delivery for already."""
        if not event_ids:
            return set()
        rows = db.execute(
            self._sql(
                "SELECT d.event_id FROM deliveries d JOIN backfills b ON b.transform = d.transform"
                f" WHERE b.id = ? AND d.event_id IN ({','.join('?' * len(event_ids))})"
            ),
            (backfill_id, *event_ids),
        ).fetchall()
        return {row[0] for row in rows}

    def finish_backfill(self, backfill_id: int, error: str | None) -> None:
        with self._transaction() as db:
            db.execute(
                self._sql(
                    "UPDATE backfills SET done_at = ?, error = ? WHERE id = ? AND done_at IS NULL"
                ),
                (self._clock(), None if error is None else self._text(error), backfill_id),
            )

    # --- transform versions (reads are in reading.py) -----------------------------------------

    def record_versions(self, versions: Sequence[TransformVersion]) -> int:
        """Keep each (name, version) once; a version seen again keeps its first time. How many
        were new."""
        if not versions:
            return 0
        now = self._clock()
        rows = [
            (v.name, v.version, self._text(v.source), now, json.dumps(dict(v.settings)))
            for v in versions
        ]
        with self._transaction() as db:
            added = db.execute(
                self._sql(
                    "INSERT INTO transform_versions (name, version, source, first_seen, settings)"
                    f" VALUES {','.join(['(?, ?, ?, ?, ?)'] * len(rows))}"
                    " ON CONFLICT (name, version) DO NOTHING RETURNING version"
                ),
                [value for row in rows for value in row],
            ).fetchall()
        return len(added)

    # --- erasure (see erasure.py) --------------------------------------------------------------

    def erase_events(self, event_ids: Sequence[int], identifiers: Sequence[str] = ()) -> Erased:
        """Delete these events with their deliveries, attempts, replay requests and search
        terms, and withhold `identifiers` (the customer's) from the bulk replays' stored
        filters (a search for them), in one transaction; then leave no copy in the files
        (`_after_erasure`)."""
        events = deliveries = 0
        with self._transaction() as db:
            self._forget_searches(db, identifiers)
            for start in range(0, len(event_ids), ERASE_CHUNK):
                chunk = list(event_ids[start : start + ERASE_CHUNK])
                marks = ",".join("?" * len(chunk))
                (found,) = db.execute(
                    self._sql(f"SELECT COUNT(*) FROM deliveries WHERE event_id IN ({marks})"),
                    chunk,
                ).fetchone()
                deliveries += int(found)
                events += max(
                    int(
                        db.execute(
                            self._sql(f"DELETE FROM events WHERE id IN ({marks})"), chunk
                        ).rowcount
                    ),
                    0,
                )
        return Erased(events, deliveries, self._after_erasure())

    def _forget_searches(self, db: Any, identifiers: Sequence[str]) -> None:
        """Bulk replays whose search named one of `identifiers` keep it withheld."""
        wanted = [value.lower() for value in identifiers]
        rows = db.execute("SELECT id, filters FROM bulk_replays").fetchall()
        for bulk_id, filters in rows:
            shown = json.loads(filters)
            if any(value in str(shown.get("q", "")).lower() for value in wanted):
                shown["q"] = ERASED
                db.execute(
                    self._sql("UPDATE bulk_replays SET filters = ? WHERE id = ?"),
                    (json.dumps(shown), bulk_id),
                )

    def _after_erasure(self) -> bool:
        """Clear what the database keeps of deleted rows outside its tables, if it can now."""
        return True

    # --- the audit trail (reads are in reading.py) ---------------------------------------------

    def record_audit(self, entry: AuditEntry) -> None:
        with self._transaction() as db:
            db.execute(
                self._sql(
                    "INSERT INTO audit_log (at, action, subject, detail, actor)"
                    " VALUES (?, ?, ?, ?, ?)"
                ),
                (
                    entry.at,
                    self._text(entry.action),
                    self._text(entry.subject),
                    self._text(entry.detail),
                    self._text(entry.actor),
                ),
            )

    # --- upkeep -------------------------------------------------------------------------------

    def prune(
        self, older_than: float, by_status: Mapping[DeliveryStatus, float] | None = None
    ) -> int:
        """Delete settled events past their retention (and their records); how many. An
        event is past it once received before `older_than`, or, for one with deliveries in a
        status `by_status` names, before that status's time: it is kept while any of its
        deliveries says to keep it. An instance that finds another pruning skips its turn (0).
        """
        cutoffs = dict(by_status or {})
        keep = " ".join("WHEN ? THEN ?" for _ in cutoffs)
        kept_since = f"CASE d.status {keep} ELSE ? END" if cutoffs else "?"
        with self._transaction() as db:
            if not self._may_prune(db):
                return 0
            cursor = db.execute(
                self._sql(
                    "DELETE FROM events WHERE received_at < ? AND state = 'done' AND NOT EXISTS"
                    " (SELECT 1 FROM deliveries d WHERE d.event_id = events.id"
                    f" AND (d.status = 'pending' OR events.received_at >= {kept_since}))"
                    " AND (received_at < ? OR EXISTS"
                    " (SELECT 1 FROM deliveries d WHERE d.event_id = events.id))"
                ),
                (
                    max([older_than, *cutoffs.values()]),
                    *(value for item in cutoffs.items() for value in (item[0].value, item[1])),
                    older_than,
                    older_than,
                ),
            )
            return max(int(cursor.rowcount), 0)


def _bytes(body: Any) -> bytes:
    """A stored body: bytes from SQLite, a memoryview from psycopg, text if made by hand."""
    return body.encode() if isinstance(body, str) else bytes(body)


def request_json(request: OutgoingRequest | None) -> str | None:
    """A request as stored: everything, credentials included (shown only redacted)."""
    return None if request is None else stored_json(request.to_json())


def json_or_none(value: Mapping[str, str] | None) -> str | None:
    return None if value is None else stored_json(dict(value))


def stored_json(value: Any) -> str:
    """`value` as JSON text for a column: orjson's, written for every delivery in a burst;
    the standard library's, ASCII-escaped, for what orjson refuses (a lone surrogate a
    handler's string may hold, kept exactly; an integer beyond 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)
