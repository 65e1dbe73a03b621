"""Versioned schema changes, applied in order at open, each exactly once.

A store records the version it has reached (SQLite: `PRAGMA user_version`;
PostgreSQL: the `schema_migrations` table) and applies the later migrations in
one transaction each, so a database made by an older release is brought
forward and a half-applied change never remains. Migrations are append-only:
never edit one that has shipped.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dodo_transform.errors import StorageError
from dodo_transform.outgoing.destination import destination_of
from dodo_transform.search_terms import event_terms

if TYPE_CHECKING:
    import psycopg


# The advisory lock every instance takes to migrate a PostgreSQL database: three instances
# started at once queue on it, the first migrates, the others find the work done.
MIGRATION_LOCK = 0x646F_646F_0001


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str
    # Run after `sql` in the same transaction, for data SQL alone cannot derive: given the
    # connection and the database's placeholder (`?` or `%s`).
    fill: Callable[[Any, str], None] | None = None


FILL_CHUNK = 5000


def _fill_destinations(db: Any, mark: str) -> None:
    """Name the destination of each pending delivery stored before deliveries had one (from
    the URL of its request: what its lane is), a chunk at a time so that a big store is never
    all in memory. Only those: the migration holds the table locked while it runs, and a
    settled delivery needs no lane."""
    after = 0
    while True:
        rows = db.execute(
            f"SELECT id, request FROM deliveries WHERE id > {mark} AND request IS NOT NULL"
            f" AND status = 'pending' ORDER BY id LIMIT {FILL_CHUNK}",
            (after,),
        ).fetchall()
        if not rows:
            return
        db.cursor().executemany(
            f"UPDATE deliveries SET destination = {mark} WHERE id = {mark}",
            [(_stored_destination(request), delivery_id) for delivery_id, request in rows],
        )
        after = rows[-1][0]


def _stored_destination(request: str) -> str:
    try:
        return destination_of(str(json.loads(request)["url"]))
    except (ValueError, KeyError, TypeError):
        return ""


def _fill_terms(db: Any, mark: str) -> None:
    """Index the events stored before search (`search_terms.event_terms`), a chunk at a time."""
    after = 0
    while True:
        rows = db.execute(
            f"SELECT id, webhook_id, body FROM events WHERE id > {mark} ORDER BY id"
            f" LIMIT {FILL_CHUNK}",
            (after,),
        ).fetchall()
        if not rows:
            return
        db.cursor().executemany(
            f"INSERT INTO event_terms (term, event_id) VALUES ({mark}, {mark})"
            " ON CONFLICT DO NOTHING",
            [
                (term, event_id)
                for event_id, webhook_id, body in rows
                for term in event_terms(webhook_id, _bytes(body))
            ],
        )
        after = rows[-1][0]


def _bytes(body: Any) -> bytes:
    """A stored body as bytes: psycopg gives a memoryview; a database made by hand may hold
    text."""
    return body.encode() if isinstance(body, str) else bytes(body)


SQLITE: tuple[Migration, ...] = (
    # Version 1 is the schema releases before versioning made; IF NOT EXISTS lets it adopt
    # their databases (user_version 0) as they are.
    Migration(
        1,
        "events, deliveries and attempts",
        """
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
        """,
    ),
    Migration(
        2,
        "replay requests, run by the worker",
        """
        CREATE TABLE replays (
            delivery_id INTEGER PRIMARY KEY REFERENCES deliveries (id) ON DELETE CASCADE,
            requested_at REAL NOT NULL,
            lease_until REAL NOT NULL DEFAULT 0,
            done_at REAL,
            statuses TEXT,
            error TEXT
        );
        CREATE INDEX replays_waiting ON replays (done_at, lease_until);
        """,
    ),
    Migration(
        3,
        "every version of a transform the service has run: its source and when first seen",
        """
        CREATE TABLE transform_versions (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            source TEXT NOT NULL,
            first_seen REAL NOT NULL,
            UNIQUE (name, version)
        );
        """,
    ),
    Migration(
        4,
        "backfills: a transform run over the stored events it has no delivery for",
        """
        CREATE TABLE backfills (
            id INTEGER PRIMARY KEY,
            transform TEXT NOT NULL,
            event_types TEXT,
            since REAL,
            last_event_id INTEGER NOT NULL,
            cursor INTEGER NOT NULL DEFAULT 0,
            ran INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            done_at REAL,
            error TEXT
        );
        CREATE INDEX deliveries_by_transform ON deliveries (transform, event_id);
        """,
    ),
    Migration(
        5,
        "destinations: each delivery's lane, fenced claims, the headers sent; versions' settings",
        """
        ALTER TABLE deliveries ADD COLUMN destination TEXT NOT NULL DEFAULT '';
        ALTER TABLE deliveries ADD COLUMN claim INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE deliveries ADD COLUMN sent_headers TEXT;
        ALTER TABLE events ADD COLUMN claim INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE transform_versions ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
        CREATE INDEX deliveries_lanes
            ON deliveries (status, transform, destination, next_attempt_at);
        """,
        _fill_destinations,
    ),
    Migration(
        6,
        "console sessions, and login attempts counted per client address",
        """
        CREATE TABLE console_sessions (
            key TEXT PRIMARY KEY,
            expires_at REAL NOT NULL
        );
        CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
        CREATE TABLE login_attempts (
            address TEXT PRIMARY KEY,
            window_start REAL NOT NULL,
            attempts INTEGER NOT NULL
        );
        """,
    ),
    Migration(
        7,
        "heartbeats: each instance's host, role, release and transform versions, seen lately",
        """
        CREATE TABLE heartbeats (
            instance TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            role TEXT NOT NULL,
            release TEXT NOT NULL,
            transforms TEXT NOT NULL,
            started_at REAL NOT NULL,
            seen_at REAL NOT NULL
        );
        """,
    ),
    Migration(
        8,
        "each event's mode: live or test, by the Dodo endpoint secret that verified it",
        """
        ALTER TABLE events ADD COLUMN mode TEXT;
        """,
    ),
    Migration(
        9,
        "search: the ids, emails and names each event body holds (store/search.py)",
        """
        CREATE TABLE event_terms (
            term TEXT NOT NULL,
            event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
            PRIMARY KEY (term, event_id)
        ) WITHOUT ROWID;
        CREATE INDEX event_terms_by_event ON event_terms (event_id);
        """,
        _fill_terms,
    ),
    Migration(
        10,
        "bulk replays: every delivery of a filtered list, replayed by the worker at a pace",
        """
        CREATE TABLE bulk_replays (
            id INTEGER PRIMARY KEY,
            filters TEXT NOT NULL,
            mode TEXT NOT NULL,
            total INTEGER NOT NULL,
            last_delivery_id INTEGER NOT NULL,
            cursor INTEGER NOT NULL DEFAULT 0,
            done INTEGER NOT NULL DEFAULT 0,
            replayed INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            done_at REAL,
            cancelled_at REAL,
            error TEXT
        );
        """,
    ),
    Migration(
        11,
        "the audit trail: who changed or replayed what, and when (never event contents)",
        """
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            action TEXT NOT NULL,
            subject TEXT NOT NULL,
            detail TEXT NOT NULL,
            actor TEXT NOT NULL
        );
        """,
    ),
)

LATEST = SQLITE[-1].version

POSTGRES: tuple[Migration, ...] = (
    # The SQLite schema at version 2, plus who holds each lease: several instances claim work,
    # and each renews and releases only its own.
    Migration(
        1,
        "events, deliveries, attempts and replay requests",
        """
        CREATE TABLE events (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            webhook_id TEXT NOT NULL UNIQUE,
            event_type TEXT NOT NULL,
            body BYTEA NOT NULL,
            received_at DOUBLE PRECISION NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
            lease_owner TEXT
        );
        CREATE INDEX events_pending ON events (id) WHERE state = 'pending';
        CREATE INDEX events_by_age ON events (received_at);
        CREATE INDEX events_by_lease_owner ON events (lease_owner) WHERE lease_owner IS NOT NULL;
        CREATE TABLE deliveries (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            event_id BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
            transform TEXT NOT NULL,
            version TEXT NOT NULL,
            generation INTEGER NOT NULL DEFAULT 0,
            idx INTEGER NOT NULL,
            status TEXT NOT NULL,
            request TEXT,
            logs TEXT NOT NULL DEFAULT '[]',
            error TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at DOUBLE PRECISION NOT NULL DEFAULT 0,
            lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
            lease_owner TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            UNIQUE (event_id, transform, generation, idx)
        );
        CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE status = 'pending';
        CREATE INDEX deliveries_by_status ON deliveries (status, id);
        CREATE INDEX deliveries_by_lease_owner ON deliveries (lease_owner)
            WHERE lease_owner IS NOT NULL;
        CREATE TABLE attempts (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            delivery_id BIGINT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
            at DOUBLE PRECISION NOT NULL,
            status_code INTEGER,
            error TEXT,
            duration_ms DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX attempts_by_delivery ON attempts (delivery_id);
        CREATE TABLE replays (
            delivery_id BIGINT PRIMARY KEY REFERENCES deliveries (id) ON DELETE CASCADE,
            requested_at DOUBLE PRECISION NOT NULL,
            lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
            lease_owner TEXT,
            done_at DOUBLE PRECISION,
            statuses TEXT,
            error TEXT
        );
        CREATE INDEX replays_waiting ON replays (requested_at) WHERE done_at IS NULL;
        """,
    ),
    Migration(
        2,
        "the instances running a pipeline, seen when they renew their leases",
        """
        CREATE TABLE instances (
            owner TEXT PRIMARY KEY,
            seen_at DOUBLE PRECISION NOT NULL
        );
        """,
    ),
    Migration(
        3,
        "every version of a transform the service has run: its source and when first seen",
        """
        CREATE TABLE transform_versions (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            source TEXT NOT NULL,
            first_seen DOUBLE PRECISION NOT NULL,
            UNIQUE (name, version)
        );
        """,
    ),
    Migration(
        4,
        "backfills: a transform run over the stored events it has no delivery for",
        """
        CREATE TABLE backfills (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            transform TEXT NOT NULL,
            event_types TEXT,
            since DOUBLE PRECISION,
            last_event_id BIGINT NOT NULL,
            cursor BIGINT NOT NULL DEFAULT 0,
            ran BIGINT NOT NULL DEFAULT 0,
            created_at DOUBLE PRECISION NOT NULL,
            done_at DOUBLE PRECISION,
            error TEXT
        );
        CREATE INDEX deliveries_by_transform ON deliveries (transform, event_id);
        """,
    ),
    Migration(
        5,
        "destinations: each delivery's lane, fenced claims, the headers sent; versions' settings",
        """
        ALTER TABLE deliveries ADD COLUMN destination TEXT NOT NULL DEFAULT '';
        ALTER TABLE deliveries ADD COLUMN claim BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE deliveries ADD COLUMN sent_headers TEXT;
        ALTER TABLE events ADD COLUMN claim BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE transform_versions ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
        CREATE INDEX deliveries_lanes ON deliveries (transform, destination, next_attempt_at, id)
            WHERE status = 'pending';
        """,
        _fill_destinations,
    ),
    Migration(
        6,
        "console sessions, and login attempts counted per client address",
        """
        CREATE TABLE console_sessions (
            key TEXT PRIMARY KEY,
            expires_at DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
        CREATE TABLE login_attempts (
            address TEXT PRIMARY KEY,
            window_start DOUBLE PRECISION NOT NULL,
            attempts INTEGER NOT NULL
        );
        """,
    ),
    Migration(
        7,
        "heartbeats: each instance's host, role, release and transform versions, seen lately",
        """
        CREATE TABLE heartbeats (
            instance TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            role TEXT NOT NULL,
            release TEXT NOT NULL,
            transforms TEXT NOT NULL,
            started_at DOUBLE PRECISION NOT NULL,
            seen_at DOUBLE PRECISION NOT NULL
        );
        """,
    ),
    Migration(
        8,
        "each event's mode: live or test, by the Dodo endpoint secret that verified it",
        """
        ALTER TABLE events ADD COLUMN mode TEXT;
        """,
    ),
    Migration(
        9,
        "search: the ids, emails and names each event body holds (store/search.py)",
        """
        CREATE TABLE event_terms (
            term TEXT NOT NULL,
            event_id BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
            PRIMARY KEY (term, event_id)
        );
        CREATE INDEX event_terms_by_event ON event_terms (event_id);
        """,
        _fill_terms,
    ),
    Migration(
        10,
        "bulk replays: every delivery of a filtered list, replayed by the worker at a pace",
        """
        CREATE TABLE bulk_replays (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            filters TEXT NOT NULL,
            mode TEXT NOT NULL,
            total BIGINT NOT NULL,
            last_delivery_id BIGINT NOT NULL,
            cursor BIGINT NOT NULL DEFAULT 0,
            done BIGINT NOT NULL DEFAULT 0,
            replayed BIGINT NOT NULL DEFAULT 0,
            created_at DOUBLE PRECISION NOT NULL,
            done_at DOUBLE PRECISION,
            cancelled_at DOUBLE PRECISION,
            error TEXT
        );
        """,
    ),
    Migration(
        11,
        "the audit trail: who changed or replayed what, and when (never event contents)",
        """
        CREATE TABLE audit_log (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            at DOUBLE PRECISION NOT NULL,
            action TEXT NOT NULL,
            subject TEXT NOT NULL,
            detail TEXT NOT NULL,
            actor TEXT NOT NULL
        );
        """,
    ),
)


def migrate_sqlite(db: sqlite3.Connection, migrations: tuple[Migration, ...] = SQLITE) -> int:
    """Bring `db` (autocommit mode) to the latest version; the version it was at."""
    (start,) = db.execute("PRAGMA user_version").fetchone()
    if start > migrations[-1].version:
        raise StorageError(
            f"the database is at schema version {start}, newer than this release knows "
            f"({migrations[-1].version}): upgrade dodo-transform"
        )
    for migration in migrations:
        if migration.version <= start:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            # Read again under the write lock: another process may have just migrated.
            (current,) = db.execute("PRAGMA user_version").fetchone()
            if migration.version > current:
                # Statement by statement: executescript() would commit the open transaction.
                for statement in migration.sql.split(";"):
                    if statement.strip():
                        db.execute(statement)
                if migration.fill is not None:
                    migration.fill(db, "?")
                db.execute(f"PRAGMA user_version = {migration.version:d}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return int(start)


def migrate_postgres(
    db: psycopg.Connection[tuple[Any, ...]], migrations: tuple[Migration, ...] = POSTGRES
) -> int:
    """Bring `db` (not in autocommit) to the latest version; the version it was at.

    Everything happens in one transaction under `MIGRATION_LOCK`: PostgreSQL's DDL is
    transactional, so instances that start together wait for the first one's commit and then
    see its version, and a failed migration leaves the database as it was.
    """
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
            " name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        row = db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
        start = int(row[0]) if row is not None else 0
        if start > migrations[-1].version:
            raise StorageError(
                f"the database is at schema version {start}, newer than this release knows "
                f"({migrations[-1].version}): upgrade dodo-transform"
            )
        for migration in migrations:
            if migration.version > start:
                db.execute(migration.sql.encode())
                if migration.fill is not None:
                    migration.fill(db, "%s")
                db.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
    return start
