"""Hot reload with the real watcher: a save is announced once per service, though both of its
processes watch the folder."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from dodo_transform.transforms.registry import Registry
from dodo_transform.transforms.reload import reload_on_change

GOOD = "function handler(w) { return w; }"


async def until(predicate: object, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_a_save_logs_change_detected_once_with_two_watchers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """As in a service: the HTTP process's registry is quiet, the worker's says what changed."""
    (tmp_path / "a.js").write_text(GOOD)
    speaks, quiet = Registry(tmp_path), Registry(tmp_path, log_changes=False)
    speaks.reload()
    quiet.reload()

    async def scenario() -> None:
        stop = asyncio.Event()
        watching = [
            asyncio.create_task(reload_on_change(registry, stop)) for registry in (speaks, quiet)
        ]
        await asyncio.sleep(0.5)  # both watchers set up
        (tmp_path / "a.js").write_text(GOOD + "\n// saved")
        await until(lambda: all(r.current()["a"].source.endswith("saved") for r in (speaks, quiet)))
        stop.set()
        await asyncio.gather(*watching)

    with caplog.at_level(logging.INFO):
        asyncio.run(scenario())
    detected = [r for r in caplog.records if "change detected" in r.getMessage()]
    assert len(detected) == 1, [r.getMessage() for r in caplog.records]
    reloaded = [r for r in caplog.records if "transform a reloaded" in r.getMessage()]
    assert len(reloaded) == 1
