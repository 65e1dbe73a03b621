"""Integration fixtures: the real server process on a free port, and a Segment stand-in
(both from `dodo_transform.testing`)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dodo_transform.testing import WRITE_KEY, SegmentStandIn, Server, server_env
from tests.conftest import EXAMPLES, TRANSFORMS


@pytest.fixture
def standin() -> Iterator[SegmentStandIn]:
    with SegmentStandIn(WRITE_KEY).running() as server:
        yield server


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(TRANSFORMS, tmp_path / "transforms")
    return tmp_path


@pytest.fixture
def server(workdir: Path, standin: SegmentStandIn) -> Iterator[Server]:
    running = Server(workdir, server_env(standin)).start()
    yield running
    running.stop()


def example(event_type: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((EXAMPLES / "events" / f"{event_type}.json").read_text())
    return body
