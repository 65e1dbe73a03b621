"""A fresh PostgreSQL database per test, on the server the machine provides.

The server is `DODO_TEST_POSTGRES_URL` (default: the local one, `root` with trust auth); each
test gets a database of its own, made through the server's `postgres` database and dropped
after. With `CI=true` a missing server fails the test: CI must run these. Elsewhere the test is
skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from urllib.parse import urlsplit

import psycopg
import pytest

SERVER = os.environ.get("DODO_TEST_POSTGRES_URL", "postgresql://root@127.0.0.1:5432/postgres")


@cache
def _unreachable() -> str | None:
    """Why the server cannot be used (None when it can); asked once per test run."""
    try:
        with psycopg.connect(SERVER, connect_timeout=3):
            return None
    except psycopg.Error as error:
        return " ".join(str(error).split())


def require_server() -> None:
    """Skip the calling test without a server; fail it in CI, where the server must be."""
    problem = _unreachable()
    if problem is None:
        return
    reason = f"no PostgreSQL server at {SERVER} ({problem})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: CI must run the PostgreSQL tests", pytrace=False)
    pytest.skip(reason)


def database_url(name: str) -> str:
    """The URL of database `name` on the test server."""
    return urlsplit(SERVER)._replace(path=f"/{name}").geturl()


@contextmanager
def fresh_database() -> Iterator[str]:
    """Create an empty database, yield its URL, and drop it (closing what still uses it)."""
    require_server()
    name = f"dodo_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(name)
    finally:
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
