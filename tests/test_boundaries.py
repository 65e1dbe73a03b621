"""The tests keep off what is not theirs (tests/boundaries.py): the user's transforms folder,
settings file and data dir, a process in the checkout, any host beyond loopback, and the
settings the person running them has exported."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.boundaries import OffLoopback, OutOfBounds
from tests.conftest import ROOT, SHIPPED


@pytest.mark.parametrize(
    "path",
    [
        ROOT / "transforms" / "segment_track_payments.js",
        ROOT / "transforms" / "my_own.js",  # one a user added
        ROOT / "transforms" / "transforms.toml",
        ROOT / "dodo-transform.env",
        ROOT / ".dodo-transform" / "webhook-secret",
    ],
    ids=lambda path: str(path.relative_to(ROOT)),
)
def test_the_users_files_cannot_be_opened(path: Path) -> None:
    with pytest.raises(OutOfBounds, match="belongs to the person running the tests"):
        path.read_bytes()


def test_the_users_transforms_folder_cannot_be_listed_or_copied(tmp_path: Path) -> None:
    with pytest.raises(OutOfBounds):
        list((ROOT / "transforms").glob("*.js"))
    with pytest.raises(OutOfBounds):
        os.listdir(ROOT / "transforms")


def test_no_process_starts_in_the_checkout_or_is_given_the_users_files(tmp_path: Path) -> None:
    with pytest.raises(OutOfBounds, match="started in the checkout"):
        subprocess.run([sys.executable, "-c", "pass"], cwd=ROOT, check=True)
    with pytest.raises(OutOfBounds, match="a path the tests do not own"):
        subprocess.run(["cat", str(ROOT / "transforms" / "x.js")], cwd=tmp_path, check=False)
    done = subprocess.run([sys.executable, "-c", "pass"], cwd=tmp_path, check=True)
    assert done.returncode == 0


def test_nothing_beyond_loopback_is_reached_or_looked_up() -> None:
    with pytest.raises(OffLoopback, match="loopback only"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)
    with pytest.raises(OffLoopback, match="look up no names"):
        socket.getaddrinfo("api.segment.io", 443)
    # What an unguarded test would have sent: httpx meets the refusal as a failed connect.
    with pytest.raises(httpx.ConnectError):
        httpx.post("https://api.segment.io/v1/track", json={}, timeout=1)


def test_loopback_and_the_tests_own_files_are_reachable(tmp_path: Path) -> None:
    assert (SHIPPED / "segment_track_payments.js").read_text().startswith("function handler")
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        socket.create_connection(listening.getsockname(), timeout=1).close()
    assert socket.getaddrinfo("localhost", 80)


def test_the_run_is_in_a_folder_of_its_own_without_our_settings() -> None:
    assert Path.cwd() != ROOT and not (Path.cwd() / "dodo-transform.env").exists()
    assert not [name for name in os.environ if name.startswith(("DODO_", "SEGMENT_"))]
