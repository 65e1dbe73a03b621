"""Integration fixtures: the whole service with the shipped handlers, in this process
(`server`) or, where the process is the point, in one of its own (`process_server`), and a
Segment stand-in (all from `dodo_transform.testing`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dodo_transform.testing import (
    WRITE_KEY,
    InProcessServer,
    SegmentStandIn,
    Server,
    server_env,
    server_settings,
)
from tests.conftest import EXAMPLES, shipped_transforms


@pytest.fixture
def standin() -> Iterator[SegmentStandIn]:
    with SegmentStandIn(WRITE_KEY).running() as server:
        yield server


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder of the test's own: `transforms/` holds a copy of the shipped handlers."""
    shipped_transforms(tmp_path / "transforms")
    return tmp_path


@pytest.fixture
def server(workdir: Path, standin: SegmentStandIn) -> Iterator[InProcessServer]:
    """The service in this process, delivering to the stand-in."""
    with InProcessServer(workdir, **server_settings(standin)) as running:
        yield running


@pytest.fixture
def process_server(workdir: Path, standin: SegmentStandIn) -> Iterator[Server]:
    """`dodo-transform serve` in a process of its own (and its worker process), delivering to
    the stand-in: for the tests about the process itself."""
    running = Server(workdir, server_env(standin)).start()
    yield running
    running.stop()


def example(event_type: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((EXAMPLES / "events" / f"{event_type}.json").read_text())
    return body
