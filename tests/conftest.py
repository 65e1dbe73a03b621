"""Shared fixtures: the inputs the tests own, the session's own working folder, and a quick way
to build events.

Tests own their inputs: the shipped handlers are copied in `tests/fixtures/transforms/`
(`SHIPPED`), the example events are `examples/events/`, and nothing of the checkout's
`transforms/`, `dodo-transform.env` or `.dodo-transform/` is read (see `tests/boundaries.py`,
which refuses it for the whole run).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dodo_transform.testing import without_our_settings
from dodo_transform.transforms.event import Event
from tests import boundaries

# A terminal size in the environment (pytest-xdist's workers start with COLUMNS=80) would fix the
# width of the CLI's tables when its consoles are made, at import: a test that needs a width
# gives the command COLUMNS of its own.
for _size in ("COLUMNS", "LINES"):
    os.environ.pop(_size, None)

ROOT = boundaries.ROOT
EXAMPLES = ROOT / "examples"
# The three handlers `transforms/` ships with (Dodo's Segment guide, formatted for editing): the
# tests' copy, so that a user's edits to their own folder change no test.
SHIPPED = ROOT / "tests" / "fixtures" / "transforms"


@pytest.hookimpl(trylast=True)  # after pytest-xdist's own start in a worker (it runs `uname`)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse what `tests/boundaries.py` lists wherever tests run, from collection on: in this
    process, or with `-n` in pytest-xdist's workers only (the process that starts them, in the
    checkout, runs no test)."""
    config = session.config
    if getattr(config, "workerinput", None) is None and config.getoption("dist", "no") != "no":
        return
    boundaries.install()


@pytest.fixture(scope="session", autouse=True)
def away_from_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The whole run in a folder of its own with none of our settings in the environment: a
    settings file in the working folder or an exported write key reaches no test's service."""
    before, environ = Path.cwd(), dict(os.environ)
    os.chdir(tmp_path_factory.mktemp("cwd"))
    os.environ.clear()
    os.environ.update(without_our_settings(environ))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(environ)
        boundaries.stand_down()
        os.chdir(before)


def shipped_transforms(folder: Path) -> Path:
    """A copy of the shipped handlers in `folder` (made if need be), for a test to change."""
    shutil.copytree(SHIPPED, folder, dirs_exist_ok=True)
    return folder


def event_from(body: dict[str, Any], webhook_id: str = "msg_test") -> Event:
    return Event.from_body(json.dumps(body), webhook_id=webhook_id)


def sample(event_type: str) -> dict[str, Any]:
    """A shipped example body, as a dict to modify."""
    body: dict[str, Any] = json.loads((EXAMPLES / "events" / f"{event_type}.json").read_text())
    return body


@pytest.fixture
def payment() -> dict[str, Any]:
    return sample("payment.succeeded")
