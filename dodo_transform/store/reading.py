"""The reads SQLite and PostgreSQL answer alike: one SQL text for both, one row shape.

Both stores inherit `SqlReads` and give `_read` (run a query, return its rows) and
`placeholder` (`?` for sqlite3, `%s` for psycopg); the queries here are written with `?`.
What differs between the two databases (claims, locks, notifications) stays in each store.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from dodo_transform.outgoing import OutgoingRequest
from dodo_transform.store.records import (
    REPLAYABLE_STATUSES,
    Attempt,
    AuditEntry,
    Backfill,
    BulkReplay,
    Delivery,
    DeliveryStatus,
    Lane,
    ReplayMode,
    ReplayRequest,
    StoredEvent,
    TransformVersion,
)
from dodo_transform.store.search import (
    COMMON,
    Filters,
    delivery_exists,
    event_conditions,
    filter_conditions,
    has_delivery_conditions,
    needs_events,
    query_terms,
)

NO_CURSOR = 2**63 - 1  # larger than any id: the first page
# An event read outside a claim: no claim (0), and its mode.
EVENT_COLUMNS = "id, webhook_id, event_type, body, received_at, 0, mode"
DELIVERY_COLUMNS = """
    d.id, d.event_id, e.webhook_id, e.event_type, d.transform, d.version, d.generation, d.idx,
    d.status, d.request, d.logs, d.error, d.attempts, d.next_attempt_at, d.created_at, d.updated_at,
    e.received_at, d.destination, d.claim, d.sent_headers
"""
_DELIVERIES = f"SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id"
_VERSIONS = "SELECT name, version, source, first_seen, settings FROM transform_versions"
_BULK_REPLAYS = (
    "SELECT id, filters, mode, total, last_delivery_id, cursor, done, replayed, created_at,"
    " done_at, cancelled_at, error FROM bulk_replays"
)
_BACKFILLS = (
    "SELECT id, transform, event_types, since, last_event_id, cursor, ran, created_at, done_at,"
    " error FROM backfills"
)


class SqlReads:
    placeholder = "?"
    # Whether an event's body holds the bytes given (SQLite's instr works on blobs).
    BODY_HOLDS = "instr(e.body, ?) > 0"

    def _read(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def _query(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        """`query`, written with `?`, in this database's placeholders."""
        return self._read(query.replace("?", self.placeholder), params)

    def get_replay(self, delivery_id: int) -> ReplayRequest | None:
        rows = self._query(
            "SELECT delivery_id, requested_at, done_at, statuses, error FROM replays"
            " WHERE delivery_id = ?",
            (delivery_id,),
        )
        if not rows:
            return None
        delivery, requested_at, done_at, statuses, error = rows[0]
        shown = tuple(DeliveryStatus(s) for s in json.loads(statuses)) if statuses else ()
        return ReplayRequest(delivery, requested_at, done_at, shown, error)

    def list_versions(self, name: str) -> list[TransformVersion]:
        """Every kept version of transform `name`, newest first."""
        rows = self._query(f"{_VERSIONS} WHERE name = ? ORDER BY first_seen DESC, id DESC", (name,))
        return [version_from_row(row) for row in rows]

    def get_version(self, name: str, version: str) -> TransformVersion | None:
        rows = self._query(f"{_VERSIONS} WHERE name = ? AND version = ?", (name, version))
        return version_from_row(rows[0]) if rows else None

    def get_event(self, event_id: int) -> StoredEvent | None:
        rows = self._query(f"SELECT {EVENT_COLUMNS} FROM events WHERE id = ?", (event_id,))
        return event_from_row(rows[0]) if rows else None

    def list_events(
        self, limit: int = 100, *, before: int | None = None, filters: Filters | None = None
    ) -> list[StoredEvent]:
        """Newest first, those `filters` choose (an event with a delivery they choose, if they
        name a status, a transform or a destination); `before` (an event id) continues a
        previous page."""
        conditions, params = ["e.id < ?"], [NO_CURSOR if before is None else before]
        if filters is not None:
            on_events, their_params = event_conditions(filters, common=self.common_terms(filters))
            conditions += on_events
            params += their_params
            if has_delivery_conditions(filters):
                exists, its_params = delivery_exists(filters)
                conditions.append(exists)
                params += its_params
        rows = self._query(
            f"SELECT {EVENT_COLUMNS} FROM events e WHERE {' AND '.join(conditions)}"
            " ORDER BY e.id DESC LIMIT ?",
            [*params, limit],
        )
        return [event_from_row(row) for row in rows]

    def events_naming(self, identifiers: Sequence[str]) -> list[StoredEvent]:
        """The events whose search terms hold any of `identifiers` (an id, an email), or whose
        bodies hold one's exact bytes (see erasure.py)."""
        terms = sorted({term for value in identifiers for term in query_terms(value)})
        needles = sorted({form for value in identifiers for form in (value, value.lower())})
        scans = " OR ".join([self.BODY_HOLDS] * len(needles))
        rows = self._query(
            f"SELECT {EVENT_COLUMNS} FROM events e WHERE e.id IN"
            f" (SELECT event_id FROM event_terms WHERE term IN ({','.join('?' * len(terms))}))"
            f" OR {scans} ORDER BY e.id",
            [*terms, *(needle.encode() for needle in needles)],
        )
        return [event_from_row(row) for row in rows]

    def count_deliveries_of(self, event_ids: Sequence[int]) -> int:
        """How many deliveries these events have."""
        total = 0
        for start in range(0, len(event_ids), 500):
            chunk = list(event_ids[start : start + 500])
            rows = self._query(
                f"SELECT COUNT(*) FROM deliveries WHERE event_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            total += int(rows[0][0])
        return total

    def get_delivery(self, delivery_id: int) -> Delivery | None:
        rows = self._query(f"{_DELIVERIES} WHERE d.id = ?", (delivery_id,))
        return delivery_from_row(rows[0]) if rows else None

    def attempts(self, delivery_id: int) -> list[Attempt]:
        rows = self._query(
            "SELECT at, status_code, error, duration_ms FROM attempts"
            " WHERE delivery_id = ? ORDER BY id",
            (delivery_id,),
        )
        return [Attempt(*row) for row in rows]

    def list_deliveries(
        self,
        status: DeliveryStatus | None = None,
        limit: int = 100,
        event_id: int | None = None,
        *,
        event_ids: Sequence[int] | None = None,
        before: int | None = None,
        transform: str | None = None,
        since: float | None = None,
        filters: Filters | None = None,
    ) -> list[Delivery]:
        """Newest first, optionally of one status, of some events, of one transform, of
        events received since `since`, or those `filters` choose; `before` (a delivery id)
        continues a previous page."""
        conditions = ["d.id < ?"]
        params: list[Any] = [NO_CURSOR if before is None else before]
        if filters is not None:
            chosen, their_params = filter_conditions(filters, self.common_terms(filters))
            conditions += chosen
            params += their_params
        if status is not None:
            conditions.append("d.status = ?")
            params.append(str(status))
        if transform is not None:
            conditions.append("d.transform = ?")
            params.append(transform)
        if since is not None:
            conditions.append("e.received_at >= ?")
            params.append(since)
        if event_id is not None:
            event_ids = [*(event_ids or ()), event_id]
        if event_ids is not None:
            if not event_ids:
                return []  # `IN ()` is no SQL PostgreSQL takes
            conditions.append(f"d.event_id IN ({','.join('?' * len(event_ids))})")
            params.extend(event_ids)
        rows = self._query(
            f"{_DELIVERIES} WHERE {' AND '.join(conditions)} ORDER BY d.id DESC LIMIT ?",
            [*params, limit],
        )
        return [delivery_from_row(row) for row in rows]

    def count_deliveries(self, filters: Filters, *, up_to: int = NO_CURSOR) -> int:
        """How many deliveries `filters` choose (with an id up to `up_to`)."""
        conditions, params = filter_conditions(filters)
        rows = self._query(
            f"SELECT COUNT(*) FROM {counted_from(filters)}"
            f" WHERE {' AND '.join(['d.id <= ?', *conditions])}",
            [up_to, *params],
        )
        return int(rows[0][0])

    def common_terms(self, filters: Filters) -> frozenset[str]:
        """The words of `filters.q` that name more than `COMMON` events: a bounded count of
        each in the index (a few milliseconds at most)."""
        if filters.q is None:
            return frozenset()
        common = set()
        for term in query_terms(filters.q):
            rows = self._query(
                "SELECT COUNT(*) FROM (SELECT 1 FROM event_terms WHERE term = ? LIMIT ?) named",
                (term, COMMON),
            )
            if int(rows[0][0]) >= COMMON:
                common.add(term)
        return frozenset(common)

    def pending_lanes(self) -> list[Lane]:
        """Every lane with a pending delivery (due now or later), in name order.

        One short index lookup per lane (a skip scan of `deliveries_lanes`): the lanes are
        few, the deliveries waiting in them may be millions. `'pending'` is written out, as
        PostgreSQL's index holds only those rows and must see that it may use it.
        """
        lanes: list[Lane] = []
        while True:
            after = lanes[-1] if lanes else ("", "")
            rows = self._query(
                "SELECT transform, destination FROM deliveries WHERE status = 'pending'"
                " AND (transform, destination) > (?, ?) ORDER BY transform, destination LIMIT 1",
                after,
            )
            if not rows:
                return lanes
            lanes.append(Lane(*rows[0]))

    def count_waiting(self, lane: Lane) -> int:
        """The pending deliveries of `lane`."""
        rows = self._query(
            "SELECT COUNT(*) FROM deliveries WHERE status = 'pending' AND transform = ?"
            " AND destination = ?",
            lane,
        )
        return int(rows[0][0])

    def counts(self) -> dict[DeliveryStatus, int]:
        """Deliveries by status."""
        rows = self._query("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
        return {DeliveryStatus(status): int(count) for status, count in rows}

    def pending_events(self) -> int:
        rows = self._query("SELECT COUNT(*) FROM events WHERE state = 'pending'")
        return int(rows[0][0])

    # --- backfills ------------------------------------------------------------------------------

    def backfill_events(
        self,
        transform: str,
        *,
        event_types: Sequence[str] | None,
        since: float | None,
        after: int,
        up_to: int,
        limit: int,
    ) -> list[StoredEvent]:
        """The next transformed events, in id order after `after`, that `transform` has no
        delivery for (a pending event gets one from the transform stage)."""
        where, params = _backfill_scope(transform, event_types, since, after, up_to)
        rows = self._query(
            f"SELECT {EVENT_COLUMNS} FROM events e WHERE {where} ORDER BY e.id LIMIT ?",
            [*params, limit],
        )
        return [event_from_row(row) for row in rows]

    def count_backfill(
        self,
        transform: str,
        *,
        event_types: Sequence[str] | None,
        since: float | None,
        after: int = 0,
        up_to: int | None = None,
    ) -> dict[str, int]:
        """How many events `backfill_events` would give, all pages together, by type."""
        where, params = _backfill_scope(
            transform, event_types, since, after, NO_CURSOR if up_to is None else up_to
        )
        rows = self._query(
            f"SELECT e.event_type, COUNT(*) FROM events e WHERE {where} GROUP BY e.event_type",
            params,
        )
        return {kind: int(n) for kind, n in rows}

    def list_backfills(self, limit: int = 20) -> list[Backfill]:
        """Newest first."""
        rows = self._query(f"{_BACKFILLS} ORDER BY id DESC LIMIT ?", (limit,))
        return [backfill_from_row(row) for row in rows]

    def get_backfill(self, backfill_id: int) -> Backfill | None:
        rows = self._query(f"{_BACKFILLS} WHERE id = ?", (backfill_id,))
        return backfill_from_row(rows[0]) if rows else None

    def unfinished_backfills(self) -> list[Backfill]:
        """Oldest first: the worker finishes one before it starts the next."""
        rows = self._query(f"{_BACKFILLS} WHERE done_at IS NULL ORDER BY id")
        return [backfill_from_row(row) for row in rows]

    # --- bulk replays ----------------------------------------------------------------------------

    def replayable_deliveries(
        self, filters: Filters, *, after: int = 0, up_to: int = NO_CURSOR, limit: int = 100
    ) -> list[Delivery]:
        """The deliveries `filters` choose that may be replayed, in id order after `after`
        (up to `up_to`): what a bulk replay takes, a step at a time."""
        where, params = replayable_scope(filters, after, up_to)
        rows = self._query(f"{_DELIVERIES} WHERE {where} ORDER BY d.id LIMIT ?", [*params, limit])
        return [delivery_from_row(row) for row in rows]

    def count_replayable(self, filters: Filters, at_most: int | None = None) -> int:
        """How many deliveries `replayable_deliveries` would give, all pages together; with
        `at_most`, counting stops there (what a list page shows, cheaply)."""
        where, params = replayable_scope(filters, 0, NO_CURSOR, self.common_terms(filters))
        counted = f"SELECT 1 FROM {counted_from(filters)} WHERE {where}"
        if at_most is not None:
            counted += " LIMIT ?"
            params.append(at_most)
        rows = self._query(f"SELECT COUNT(*) FROM ({counted}) chosen", params)
        return int(rows[0][0])

    def get_bulk_replay(self, bulk_id: int) -> BulkReplay | None:
        rows = self._query(f"{_BULK_REPLAYS} WHERE id = ?", (bulk_id,))
        return bulk_replay_from_row(rows[0]) if rows else None

    def list_bulk_replays(self, limit: int = 20) -> list[BulkReplay]:
        """Newest first."""
        rows = self._query(f"{_BULK_REPLAYS} ORDER BY id DESC LIMIT ?", (limit,))
        return [bulk_replay_from_row(row) for row in rows]

    def unfinished_bulk_replays(self) -> list[BulkReplay]:
        """Oldest first: the worker finishes one before it starts the next."""
        rows = self._query(f"{_BULK_REPLAYS} WHERE done_at IS NULL ORDER BY id")
        return [bulk_replay_from_row(row) for row in rows]

    def list_audit(self, limit: int = 100, *, before: int | None = None) -> list[AuditEntry]:
        """The audit trail, newest first; `before` (an entry id) continues a previous page."""
        rows = self._query(
            "SELECT at, action, subject, detail, actor, id FROM audit_log WHERE id < ?"
            " ORDER BY id DESC LIMIT ?",
            (NO_CURSOR if before is None else before, limit),
        )
        return [AuditEntry(*row) for row in rows]

    def ping(self) -> None:
        self._query("SELECT 1")


def counted_from(filters: Filters) -> str:
    """What a count of deliveries reads: the events too only if the filters need them."""
    if needs_events(filters):
        return "deliveries d JOIN events e ON e.id = d.event_id"
    return "deliveries d"


def replayable_scope(
    filters: Filters, after: int, up_to: int, common: frozenset[str] = frozenset()
) -> tuple[str, list[Any]]:
    """The WHERE clause (on `deliveries d JOIN events e`) of the deliveries a bulk replay of
    `filters` takes, after `after` and up to `up_to`, and its parameters.

    Bounds that bound nothing are left out: given `d.id > 0`, SQLite walks every delivery by
    id rather than the few of a status through the status index."""
    chosen, params = filter_conditions(filters, common)
    replayable = [status.value for status in REPLAYABLE_STATUSES]
    conditions = [f"d.status IN ({','.join('?' * len(replayable))})"]
    bounds: list[Any] = []
    if after > 0:
        conditions.append("d.id > ?")
        bounds.append(after)
    if up_to < NO_CURSOR:
        conditions.append("d.id <= ?")
        bounds.append(up_to)
    return " AND ".join(conditions + chosen), [*replayable, *bounds, *params]


def bulk_replay_from_row(row: Sequence[Any]) -> BulkReplay:
    values = list(row)
    values[1] = json.loads(values[1])
    values[2] = ReplayMode(values[2])
    return BulkReplay(*values)


def event_from_row(row: Sequence[Any]) -> StoredEvent:
    """A row of `EVENT_COLUMNS`: psycopg gives the body as a memoryview, and a database made
    by hand may hold it as text."""
    event_id, webhook_id, event_type, body, received_at, *claim_and_mode = row
    raw = body.encode() if isinstance(body, str) else bytes(body)
    return StoredEvent(event_id, webhook_id, event_type, raw, received_at, *claim_and_mode)


def _backfill_scope(
    transform: str,
    event_types: Sequence[str] | None,
    since: float | None,
    after: int,
    up_to: int,
) -> tuple[str, list[Any]]:
    """The WHERE clause (on `events e`) of a backfill's events, and its parameters."""
    conditions = [
        "e.id > ?",
        "e.id <= ?",
        "e.state = 'done'",
        "NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.transform = ? AND d.event_id = e.id)",
    ]
    params: list[Any] = [after, up_to, transform]
    if since is not None:
        conditions.append("e.received_at >= ?")
        params.append(since)
    if event_types is not None:
        if not event_types:
            conditions.append("1 = 0")
        else:
            conditions.append(f"e.event_type IN ({','.join('?' * len(event_types))})")
            params.extend(event_types)
    return " AND ".join(conditions), params


def version_from_row(row: Sequence[Any]) -> TransformVersion:
    name, version, source, first_seen, settings = row
    return TransformVersion(name, version, source, first_seen, json.loads(settings))


def backfill_from_row(row: Sequence[Any]) -> Backfill:
    values = list(row)
    values[2] = None if values[2] is None else tuple(json.loads(values[2]))
    return Backfill(*values)


def delivery_from_row(row: Sequence[Any]) -> Delivery:
    """A row of `DELIVERY_COLUMNS`."""
    values = list(row)
    values[8] = DeliveryStatus(values[8])
    values[9] = None if values[9] is None else OutgoingRequest.from_json(json.loads(values[9]))
    values[10] = json.loads(values[10])
    values[19] = None if values[19] is None else json.loads(values[19])
    return Delivery(*values)
