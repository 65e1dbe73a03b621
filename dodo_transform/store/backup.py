"""A consistent copy of a running SQLite store, with SQLite's online backup API.

The copy is one read transaction's snapshot (`sqlite3.Connection.backup` in a single step):
every event committed before it began is in it, whatever the service writes meanwhile (in WAL
mode a reader holds up no writer, and no writer holds up the reader). It is written beside the
target under a temporary name, checked (`PRAGMA quick_check`), made owner-only (it holds
customers' emails) and only then renamed to the target, so a failed or interrupted backup
never leaves a half file under the name asked for. PostgreSQL is copied with its own tools
(`pg_dump`): see docs/going-live.md.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from dodo_transform.errors import StorageError


@dataclass(frozen=True)
class Backup:
    path: Path
    events: int
    size: int  # bytes


def backup_sqlite(source: Path, target: Path) -> Backup:
    """Copy the store at `source` to `target` (which must not exist); what was copied."""
    if not source.is_file():
        raise StorageError(f"no store at {source}: is the data dir (--data-dir) the service's?")
    if target.exists():
        raise StorageError(f"{target} exists already: give a new file name")
    partial = target.with_name(f".{target.name}.partial")
    try:
        _copy(source, partial)
        events = _check(partial)
        os.replace(partial, target)
    except (OSError, sqlite3.Error) as error:
        raise StorageError(f"backing up {source} to {target} failed: {error}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return Backup(target, events, target.stat().st_size)


def _copy(source: Path, partial: Path) -> None:
    partial.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    partial.touch(mode=0o600)
    # Not `mode=ro`: a read-only connection cannot open a WAL database whose shared memory
    # file is gone (the service stopped). It only reads all the same, and migrates nothing.
    origin = sqlite3.connect(source)
    copy = sqlite3.connect(partial)
    try:
        origin.execute("PRAGMA busy_timeout=5000")
        origin.backup(copy)  # every page in one step: one snapshot
        # A file of its own, not a WAL database waiting for its -wal file.
        copy.execute("PRAGMA journal_mode=DELETE")
    finally:
        copy.close()
        origin.close()


def _check(partial: Path) -> int:
    copy = sqlite3.connect(f"{partial.resolve().as_uri()}?mode=ro", uri=True)
    try:
        (verdict,) = copy.execute("PRAGMA quick_check").fetchone()
        if verdict != "ok":
            raise sqlite3.DatabaseError(f"the copy does not check out: {verdict}")
        (events,) = copy.execute("SELECT COUNT(*) FROM events").fetchone()
    finally:
        copy.close()
    return int(events)
