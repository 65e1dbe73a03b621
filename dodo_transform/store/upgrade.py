"""What `dodo-transform migrate` does: bring the database to this release's schema without
starting the service, and say from which version (the migrations themselves are
`migrations.py`, applied by the stores as they open)."""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass

from dodo_transform.errors import StorageError
from dodo_transform.settings import Settings
from dodo_transform.store import is_postgres, open_store
from dodo_transform.store.migrations import POSTGRES, SQLITE


@dataclass(frozen=True)
class Migrated:
    """What `migrate` did: the schema version the database was at, and this release's."""

    before: int
    after: int


def migrate(settings: Settings) -> Migrated:
    """Bring the database the settings name to this release's schema, as `serve` does when it
    starts (PostgreSQL: under `MIGRATION_LOCK`, so instances starting meanwhile wait). Raises
    `StorageError` when the database is unreachable or newer than this release."""
    postgres = is_postgres(settings.database_url)
    before = (
        _postgres_version(str(settings.database_url)) if postgres else _sqlite_version(settings)
    )
    open_store(settings, claims_work=False).close()
    return Migrated(before, (POSTGRES if postgres else SQLITE)[-1].version)


def _sqlite_version(settings: Settings) -> int:
    path = settings.sqlite_path
    if not path.is_file():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.Error as error:
        raise StorageError(f"cannot read the database {path}: {error}") from None


def _postgres_version(url: str) -> int:
    import psycopg  # loads only for PostgreSQL

    from dodo_transform.store.postgres import CONNECT_TIMEOUT_SECONDS, shown

    try:
        with psycopg.connect(url, connect_timeout=int(CONNECT_TIMEOUT_SECONDS)) as db:
            table = db.execute("SELECT to_regclass('schema_migrations')").fetchone()
            if table is None or table[0] is None:
                return 0
            row = db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
            return int(row[0]) if row is not None else 0
    except psycopg.Error as error:
        raise StorageError(f"cannot open the store at {shown(url)}: {error}") from None
