"""`dodo-transform migrate` brings a database to this release's schema, as `serve` does at start,
on both stores; a database newer than the release stops `migrate` and `serve` with one line and
exit code 2, never a traceback."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg

from dodo_transform.store.migrations import POSTGRES, SQLITE
from tests.command_line import run as cli
from tests.conftest import SHIPPED
from tests.postgres import fresh_database


def sqlite_version(data: Path) -> int:
    with sqlite3.connect(data / "dodo-transform.db") as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def test_migrate_creates_then_finds_the_sqlite_schema_current(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = cli("migrate", "--data-dir", data, cwd=tmp_path)
    latest = SQLITE[-1].version
    assert first.returncode == 0, first.stderr
    database = (data / "dodo-transform.db").resolve()
    assert first.stdout.strip() == (
        f"SQLite {database}: schema version 0 -> {latest} ({latest} migrations applied)"
    )
    assert sqlite_version(data) == latest
    again = cli("migrate", "--data-dir", data, cwd=tmp_path)
    assert again.stdout.strip() == f"SQLite {database}: already at schema version {latest}"


def test_migrate_brings_an_older_sqlite_database_forward(tmp_path: Path) -> None:
    from dodo_transform.store.migrations import migrate_sqlite

    data = tmp_path / "data"
    data.mkdir()
    with sqlite3.connect(data / "dodo-transform.db", isolation_level=None) as db:
        migrate_sqlite(db, SQLITE[:2])  # as the release with two migrations left it
    done = cli("migrate", "--data-dir", data, cwd=tmp_path)
    assert f"schema version 2 -> {SQLITE[-1].version}" in done.stdout
    assert sqlite_version(data) == SQLITE[-1].version


def test_migrate_applies_pending_postgres_migrations_without_printing_the_password(
    tmp_path: Path,
) -> None:
    with fresh_database() as url:
        with_password = url.replace("://root@", "://root:s3cret-pw@")
        # Trust authentication ignores the password: the URL is as a user would write it.
        done = cli("migrate", "--database-url", with_password, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert f"schema version 0 -> {POSTGRES[-1].version}" in done.stdout
        assert "s3cret-pw" not in done.stdout + done.stderr and ":***@" in done.stdout
        again = cli("migrate", "--database-url", url, cwd=tmp_path)
        assert f"already at schema version {POSTGRES[-1].version}" in again.stdout
        with psycopg.connect(url) as db:
            row = db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        assert row is not None and row[0] == POSTGRES[-1].version


def test_migrate_refuses_a_postgres_database_newer_than_the_release(tmp_path: Path) -> None:
    with fresh_database() as url:
        assert cli("migrate", "--database-url", url, cwd=tmp_path).returncode == 0
        with psycopg.connect(url) as db:
            db.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, 'future')",
                (POSTGRES[-1].version + 1,),
            )
        done = cli("migrate", "--database-url", url, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"error: the database is at schema version {POSTGRES[-1].version + 1}, newer than this"
        f" release knows ({POSTGRES[-1].version}): upgrade dodo-transform"
    )


def test_serve_refuses_a_database_newer_than_the_release_in_one_line(tmp_path: Path) -> None:
    """The real command (its exit code and its streams are the point): no banner, no
    traceback, exit code 2."""
    data = tmp_path / "data"
    data.mkdir()
    with sqlite3.connect(data / "dodo-transform.db") as db:
        db.execute(f"PRAGMA user_version = {SQLITE[-1].version + 1}")
    serve = [sys.executable, "-m", "dodo_transform", "serve", "--port", "0"]
    done = subprocess.run(
        [*serve, "--transforms", str(SHIPPED), "--data-dir", str(data)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: the database is at schema version {SQLITE[-1].version + 1}, newer than this"
        f" release knows ({SQLITE[-1].version}): upgrade dodo-transform"
    ]
    assert "is running" not in done.stdout
    assert sqlite_version(data) == SQLITE[-1].version + 1  # left as it was
