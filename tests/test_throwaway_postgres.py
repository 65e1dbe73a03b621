"""A test's own PostgreSQL server (tests/postgres.py): it serves, stops and starts again with
its data, goes away afterwards, and the machine's server is never restarted by any of it."""

from __future__ import annotations

import psycopg
import pytest

from tests.postgres import shared_server_untouched, started_at, throwaway_server


def test_a_throwaway_server_keeps_its_data_across_a_stop_and_goes_away_after() -> None:
    with shared_server_untouched(), throwaway_server() as server:
        assert server.port != 5432
        with psycopg.connect(server.url, autocommit=True) as db:
            db.execute("CREATE TABLE kept (n int)")
            db.execute("INSERT INTO kept VALUES (1)")
        first_start = started_at(server.url)
        server.stop()
        assert started_at(server.url) is None  # nothing answers
        server.start()
        assert started_at(server.url) not in (None, first_start)
        with psycopg.connect(server.url) as db:
            assert db.execute("SELECT n FROM kept").fetchall() == [(1,)]
    assert not server.folder.exists()
    assert started_at(server.url) is None


def test_a_restarted_server_fails_the_untouched_check() -> None:
    """The check the outage test relies on sees a restart (of a throwaway server standing in
    for the machine's, which nothing here touches); a server left stopped is cleaned up too."""
    with throwaway_server() as server:
        restarted = pytest.raises(AssertionError, match="restarted or stopped")
        with restarted, shared_server_untouched(server.url):
            server.stop()
            server.start()
        with shared_server_untouched(server.url), psycopg.connect(server.url) as db:
            db.execute("SELECT 1")  # used, not restarted: the check passes
        server.stop()
    assert not server.folder.exists()
