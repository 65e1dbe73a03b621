"""PostgreSQL for the tests: a fresh database on the machine's server, or a server of a test's own.

The machine's server is `DODO_TEST_POSTGRES_URL` (default: the local one, `root` with trust
auth); each test gets a database of its own, made through the server's `postgres` database and
dropped after. With `CI=true` a missing server fails the test: CI must run these. Elsewhere the
test is skipped with the reason.

A test that stops PostgreSQL (an outage) never stops that one: `throwaway_server()` starts one
of its own, and `shared_server_untouched()` checks that the machine's was not restarted.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
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


# ---- a server of the test's own -------------------------------------------------------------
# A test that stops PostgreSQL (an outage) must never stop the machine's: other work may need
# it. It starts a throwaway server instead, from the PostgreSQL binaries (Debian keeps them in
# /usr/lib/postgresql/<version>/bin, off PATH), in a temporary folder, on a free loopback port.

INITDB_OPTIONS = (
    "--username=postgres",
    "--auth=trust",
    "--encoding=UTF8",
    "--no-sync",  # a server thrown away after the test needs no durable start
    "--no-instructions",
)
WAIT = ("--wait", "--timeout=60")


def postgres_binaries() -> Path | None:
    """The folder holding `initdb` and `pg_ctl`: Debian's newest version, else PATH's."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0,
    )
    if debian:
        return debian[-1].parent
    found = shutil.which("initdb")
    return (
        Path(found).parent
        if found and shutil.which("pg_ctl", path=str(Path(found).parent))
        else None
    )


def unprivileged_user() -> str | None:
    """Who runs the server: PostgreSQL refuses to run as root, so as root `postgres` (else
    `nobody`); None when the tests already run as an ordinary user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name).pw_name
    raise RuntimeError("running as root, with neither a `postgres` nor a `nobody` user to run as")


def free_port() -> int:
    """A loopback port nothing listens on now (the server takes it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ThrowawayServer:
    """A PostgreSQL server in `folder` that only this test uses: trust auth, user `postgres`,
    listening on 127.0.0.1:`port` (and a socket in `folder`), fsync off."""

    folder: Path
    port: int
    binaries: Path
    user: str | None

    @property
    def url(self) -> str:
        """Its `postgres` database: the server is thrown away, so tests use that one."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "log"

    def create(self) -> None:
        self._run("initdb", f"--pgdata={self.data}", *INITDB_OPTIONS)
        settings = (
            f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{self.folder}'\nfsync = off\n"
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(settings)

    def start(self) -> None:
        self._run("pg_ctl", "start", f"--pgdata={self.data}", f"--log={self.log}", *WAIT)

    def stop(self, mode: str = "fast") -> None:
        """Stop it as an administrator would (`fast`: connections are cut, nothing lost)."""
        self._run("pg_ctl", "stop", f"--pgdata={self.data}", f"--mode={mode}", *WAIT)

    def running(self) -> bool:
        command = self._command("pg_ctl", "status", f"--pgdata={self.data}")
        return subprocess.run(command, capture_output=True, cwd=self.folder).returncode == 0

    def _command(self, program: str, *arguments: str) -> list[str]:
        as_user = ["runuser", "-u", self.user, "--"] if self.user else []
        return [*as_user, str(self.binaries / program), *arguments]

    def _run(self, program: str, *arguments: str) -> None:
        command = self._command(program, *arguments)
        # In its own folder: the unprivileged user may not enter the test's working directory.
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.folder)
        if done.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed ({done.returncode}): {done.stdout}{done.stderr}{tail}"
            )


def require_binaries() -> Path:
    """The PostgreSQL binaries; skip the calling test without them, fail it in CI."""
    binaries = postgres_binaries()
    if binaries is not None:
        return binaries
    reason = "no PostgreSQL binaries (initdb, pg_ctl): install Debian's `postgresql` package"
    if os.environ.get("CI") == "true":
        pytest.fail(
            f"{reason}: CI must run the tests that need a server of their own", pytrace=False
        )
    pytest.skip(reason)


@contextmanager
def throwaway_server() -> Iterator[ThrowawayServer]:
    """A new PostgreSQL server, started; stopped and deleted afterwards, whatever its state."""
    binaries = require_binaries()
    user = unprivileged_user()
    folder = Path(tempfile.mkdtemp(prefix="dodo-pg-"))
    try:
        if user is not None:
            owner = pwd.getpwnam(user)
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        server = ThrowawayServer(folder, free_port(), binaries, user)
        server.create()
        server.start()
        try:
            yield server
        finally:
            if server.running():
                server.stop("immediate")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def started_at(url: str) -> datetime | None:
    """When the server at `url` started (None when none answers): a restart changes it."""
    try:
        with psycopg.connect(url, connect_timeout=3) as db:
            row = db.execute("SELECT pg_postmaster_start_time()").fetchone()
    except psycopg.OperationalError:
        return None
    return row[0] if row else None


@contextmanager
def shared_server_untouched(url: str = SERVER) -> Iterator[None]:
    """Fail unless the server at `url` (the machine's, if it runs one) was neither restarted nor
    stopped meanwhile: tests stop only servers of their own."""
    before = started_at(url)
    yield
    after = started_at(url)
    assert after == before, (
        f"the PostgreSQL server at {url} was restarted or stopped: {before} -> {after}"
    )
