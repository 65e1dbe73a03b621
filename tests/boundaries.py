"""What the tests may not touch, enforced for the whole run rather than promised.

The checkout's `transforms/` folder, its `dodo-transform.env` and its `.dodo-transform/` data
dir belong to the person running the tests: changing their transforms is the point of the tool,
and their settings name their own Segment workspace and Slack. So tests own their inputs (the
shipped handlers are copied under `tests/fixtures/transforms/`), and an audit hook refuses, in
this process:

- opening or listing anything in those three places;
- starting a process in the checkout (where `serve`, `test` or `check` would find them by their
  default relative paths) or one that names them;
- connecting to, or looking up, any host beyond loopback: a destination a test did not start.

The session also runs in a folder of its own, with no DODO_* or SEGMENT_* variable set
(`conftest.py`), so neither a settings file in the working folder nor an exported write key
reaches a test's service.

An audit hook stays for the life of the interpreter: nothing lifts these refusals.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
THE_USERS = (ROOT / "transforms", ROOT / "dodo-transform.env", ROOT / ".dodo-transform")
PATH_EVENTS = {"open", "os.listdir", "os.scandir"}
LOCAL_NAMES = {"localhost", "localhost.localdomain"}

_installed: list[bool] = []
_standing_down: list[bool] = []


class OutOfBounds(RuntimeError):
    """A test reached for a file or a folder that is not its own. Not an `OSError`: `glob`
    and friends swallow those, and would hide the reach as an empty folder."""


class OffLoopback(ConnectionRefusedError):
    """A test reached for a host beyond loopback: refused as the network would refuse it, so
    the code under test meets what it meets when a destination is down."""


def stand_down() -> None:
    """Refuse nothing more: the run is over, and pytest's clean-up of old temporary folders
    (names relative to a folder descriptor, which an audit event does not carry) must not be
    taken for the checkout's `transforms/` once the working folder is the checkout again."""
    _standing_down.append(True)


def install() -> None:
    """Refuse, from now on, what this module's docstring lists (once per interpreter)."""
    if not _installed:
        sys.addaudithook(_refuse_out_of_bounds)
        _installed.append(True)


def _refuse_out_of_bounds(event: str, args: tuple[Any, ...]) -> None:
    if _standing_down:
        return
    if event in PATH_EVENTS:
        _refuse_the_users_path(args[0])
    elif event == "subprocess.Popen":
        _refuse_a_process_in_the_checkout(args[1], args[2])
    elif event == "socket.connect":
        _refuse_a_remote_connection(args[0], args[1])
    elif event == "socket.getaddrinfo":
        _refuse_a_remote_name(args[0])


def _refuse_the_users_path(path: object) -> None:
    if _is_the_users(path):
        raise OutOfBounds(
            f"{path} belongs to the person running the tests: use a copy the test owns "
            "(tests/fixtures/transforms/ holds the shipped handlers)"
        )


def _refuse_a_process_in_the_checkout(argv: object, cwd: object) -> None:
    if _is_checkout(os.getcwd() if cwd is None else cwd):
        raise OutOfBounds(
            f"a process started in the checkout {ROOT} reads its transforms/ and "
            "dodo-transform.env: give it a folder of the test's own (cwd=tmp_path)"
        )
    if isinstance(argv, list | tuple) and any(_is_the_users(arg) for arg in argv):
        raise OutOfBounds(f"a process was given a path the tests do not own: {argv}")


def _refuse_a_remote_connection(sock: object, address: object) -> None:
    family = getattr(sock, "family", None)
    if family not in (socket.AF_INET, socket.AF_INET6):
        return  # a Unix socket, a pipe: on this machine by definition
    host = address[0] if isinstance(address, tuple) else address
    if not _is_local(host):
        raise OffLoopback(f"tests connect to loopback only, not to {host!r}")


def _refuse_a_remote_name(host: object) -> None:
    if host is not None and not _is_local(host) and not _is_address(host):
        raise OffLoopback(f"tests look up no names but loopback's, not {host!r}")


def _is_local(host: object) -> bool:
    name = _host_name(host)
    if name.lower() in LOCAL_NAMES:
        return True
    address = _address(name)
    return address is not None and (address.is_loopback or address.is_unspecified)


def _is_address(host: object) -> bool:
    """An address written out, which no lookup goes beyond this machine to answer."""
    return _address(_host_name(host)) is not None


def _host_name(host: object) -> str:
    return os.fsdecode(host) if isinstance(host, str | bytes) else str(host)


def _address(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name.split("%", 1)[0])  # without an IPv6 zone
    except ValueError:
        return None


def _as_path(value: object) -> Path | None:
    if isinstance(value, str | bytes | os.PathLike):
        return Path(os.path.abspath(os.fsdecode(value)))
    return None


def _is_checkout(value: object) -> bool:
    return _as_path(value) == ROOT


def _is_the_users(value: object) -> bool:
    path = _as_path(value)
    return path is not None and any(path == place or place in path.parents for place in THE_USERS)
