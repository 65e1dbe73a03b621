"""`dodo-transform backup` (store/backup.py): a consistent copy of a running SQLite store."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from dodo_transform.store import NewEvent
from dodo_transform.store.sqlite import SqliteStore
from dodo_transform.testing import InProcessServer, SegmentStandIn, server_settings
from tests.command_line import run
from tests.conftest import sample, shipped_transforms


def stored_webhooks(path: Path) -> set[str]:
    copy = sqlite3.connect(path)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return {row[0] for row in copy.execute("SELECT webhook_id FROM events")}
    finally:
        copy.close()


def test_a_backup_under_load_opens_and_holds_every_acknowledged_event(tmp_path: Path) -> None:
    shipped_transforms(tmp_path / "transforms")
    acknowledged: list[str] = []
    stop = threading.Event()

    def post_until_stopped(server: InProcessServer) -> None:
        n = 0
        while not stop.is_set():
            webhook_id = f"msg_{n:06d}"
            if server.post(sample("payment.succeeded"), webhook_id=webhook_id).is_success:
                acknowledged.append(webhook_id)
            n += 1

    with (
        SegmentStandIn().running() as standin,
        InProcessServer(tmp_path, **server_settings(standin)) as server,
    ):
        load = threading.Thread(target=post_until_stopped, args=(server,))
        load.start()
        try:
            server.wait_until(lambda: len(acknowledged) >= 50, what="50 webhooks in")
            before = list(acknowledged)  # acknowledged before the backup began
            made = run("backup", tmp_path / "copy.db", "--data-dir", tmp_path / "data")
            after_count = len(acknowledged)
        finally:
            stop.set()
            load.join()
    assert made.returncode == 0, made.stderr
    assert "backed up" in made.stdout and "copy.db" in made.stdout
    copied = stored_webhooks(tmp_path / "copy.db")
    assert set(before) <= copied
    # Nothing the service had not stored: what was acknowledged when the backup ended, and at
    # most the one webhook then in flight (stored, its answer not yet back at the poster).
    assert len(copied) <= after_count + 1
    assert (tmp_path / "copy.db").stat().st_mode & 0o777 == 0o600
    assert not list(tmp_path.glob("copy.db-*")) and not list(tmp_path.glob(".copy.db*"))


def test_a_backup_restores_as_the_store(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "data" / "dodo-transform.db")
    store.add_events([NewEvent("msg_1", "payment.succeeded", b'{"a": 1}')])
    store.close()
    assert run("backup", tmp_path / "b.db", "--data-dir", tmp_path / "data").returncode == 0
    restored = SqliteStore(tmp_path / "b.db")
    try:
        (event,) = restored.list_events()
        assert (event.webhook_id, event.body) == ("msg_1", b'{"a": 1}')
    finally:
        restored.close()


def test_a_backup_never_overwrites_and_says_what_to_do(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "data" / "dodo-transform.db").close()
    (tmp_path / "taken.db").write_text("mine")
    taken = run("backup", tmp_path / "taken.db", "--data-dir", tmp_path / "data")
    assert taken.returncode == 2 and "exists already" in taken.stderr
    assert (tmp_path / "taken.db").read_text() == "mine"
    nowhere = run("backup", tmp_path / "x.db", "--data-dir", tmp_path / "nowhere")
    assert nowhere.returncode == 2 and "no store at" in nowhere.stderr
    postgres = run(
        "backup",
        tmp_path / "x.db",
        env={"DODO_TRANSFORM_DATABASE_URL": "postgresql://root@127.0.0.1/x"},
    )
    assert postgres.returncode == 2 and "pg_dump" in postgres.stderr
