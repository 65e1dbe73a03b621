"""Versioned schema changes, applied in order at open, each exactly once.

A store records the version it has reached (SQLite: `PRAGMA user_version`)
and applies the later migrations in one transaction each, so a database made
by an older release is brought forward and a half-applied change never
remains. Migrations are append-only: never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from dodo_transform.errors import StorageError


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


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
)

LATEST = SQLITE[-1].version


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
                db.execute(f"PRAGMA user_version = {migration.version:d}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return int(start)
