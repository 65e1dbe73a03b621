"""The worker's supervision: liveness by heartbeat, restarts with backoff, loops that survive."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import threading
import time
from pathlib import Path

import pytest

from dodo_transform.pipeline import worker
from dodo_transform.pipeline.worker import HEARTBEAT_FILE, WorkerProcess
from dodo_transform.service import build_service
from dodo_transform.settings import Settings, load_settings


def silent_worker(settings: Settings, parent_pid: int, wake: object) -> None:
    """A worker that beats once, then hangs (as one whose event loop is wedged would)."""
    beat = {"at": time.time(), "pid": os.getpid(), "problems": []}
    (settings.data_dir / HEARTBEAT_FILE).write_text(json.dumps(beat))
    time.sleep(60)


def settings_in(tmp_path: Path) -> Settings:
    (tmp_path / "transforms").mkdir(exist_ok=True)
    (tmp_path / "data").mkdir(exist_ok=True)
    return load_settings(
        transforms=tmp_path / "transforms",
        data_dir=tmp_path / "data",
        webhook_secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        lease_seconds=0.2,
    )


def wait_for(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_liveness_is_the_heartbeat_not_the_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_in(tmp_path)
    handle = WorkerProcess(settings, silent_worker)
    handle.start()
    try:
        wait_for(lambda: (settings.data_dir / HEARTBEAT_FILE).exists())
        assert handle.problems() == []
        stale = {"at": time.time() - 30, "problems": []}
        (settings.data_dir / HEARTBEAT_FILE).write_text(json.dumps(stale))
        assert handle.alive
        assert handle.problems() == ["the worker process has not reported for 30 s"]
        stuck = {"at": time.time(), "problems": ["the transform loop has been stuck for 99 s"]}
        (settings.data_dir / HEARTBEAT_FILE).write_text(json.dumps(stuck))
        assert handle.problems() == ["the transform loop has been stuck for 99 s"]
        (settings.data_dir / HEARTBEAT_FILE).unlink()
        monkeypatch.setattr(worker, "STARTUP_GRACE_SECONDS", 0.0)
        assert handle.problems() == ["the worker process has never reported"]
    finally:
        handle.stop()
    assert handle.problems() == ["the worker process is not running"]


def test_a_silent_worker_is_restarted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "HEARTBEAT_STALE_SECONDS", 1.0)
    monkeypatch.setattr(worker, "REPORT_SECONDS", 0.2)
    monkeypatch.setattr(worker, "STOP_TIMEOUT_SECONDS", 1.0)
    settings = settings_in(tmp_path)
    handle = WorkerProcess(settings, silent_worker)

    async def supervise_until_restarted() -> int | None:
        handle.start()
        first = handle.pid
        stop = asyncio.Event()
        task = asyncio.create_task(handle.supervise(stop))
        deadline = time.monotonic() + 30
        while handle.pid == first and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        stop.set()
        await task
        return first

    try:
        first = asyncio.run(supervise_until_restarted())
        assert handle.pid is not None and handle.pid != first
    finally:
        handle.stop()


def test_restarts_back_off_while_they_keep_coming(tmp_path: Path) -> None:
    handle = WorkerProcess(settings_in(tmp_path), silent_worker)
    delays = [handle._restart_delay() for _ in range(9)]
    assert delays == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_a_step_that_raises_does_not_stop_its_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dodo_transform.pipeline import runner

    monkeypatch.setattr(runner, "STEP_FAILED_BACKOFF_SECONDS", 0.01)
    service = build_service(settings_in(tmp_path), in_worker=True, idle_poll_seconds=0.01)
    pipeline = service.pipeline
    assert pipeline is not None
    calls = 0

    async def broken_step() -> bool:
        nonlocal calls
        calls += 1
        raise RuntimeError("a bug")

    monkeypatch.setattr(pipeline.transforming, "step", broken_step)

    async def run() -> list[str]:
        await pipeline.start()
        while calls < 3:
            await asyncio.sleep(0.01)
        problems = pipeline.problems()
        await pipeline.stop()
        return problems

    try:
        assert asyncio.run(run()) == []
    finally:
        service.store.close()
    assert calls >= 3


def test_a_stuck_step_is_named_by_the_heartbeat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = build_service(settings_in(tmp_path), in_worker=True)
    pipeline = service.pipeline
    assert pipeline is not None

    async def stuck_step() -> bool:
        await asyncio.sleep(3600)
        return True

    monkeypatch.setattr(pipeline.delivering, "step", stuck_step)

    async def run() -> list[str]:
        await pipeline.start()
        await asyncio.sleep(0.5)  # longer than the 0.2 s lease: the point is that time passes
        problems = pipeline.problems()
        await pipeline.stop(timeout=0.1)
        return problems

    try:
        (problem,) = asyncio.run(run())
    finally:
        service.store.close()
    assert problem.startswith("the deliver loop has been stuck for")


def test_the_worker_hears_of_new_work_when_the_http_process_stores_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No poll to wait for: the HTTP process's wakes reach the worker's pipeline, and waking
    never makes the HTTP process wait, not even with nobody reading (a worker busy or gone)."""
    monkeypatch.setattr(worker, "WAKE_EVERY_SECONDS", 0.0)
    handle = WorkerProcess(settings_in(tmp_path), silent_worker)
    for _ in range(100_000):  # far more than the pipe holds: a blocking write would hang here
        handle.notify_events()
    heard = threading.Event()
    worker.listen_for_wakes(handle._wakes, heard.set, heard.set)
    assert heard.wait(2)
    heard.clear()
    handle.notify_events()
    assert heard.wait(2)  # read all at once, then woken again by the next


def test_a_wake_for_new_events_wakes_only_the_transform_loop(tmp_path: Path) -> None:
    """Ingest's wakes (a hundred a second in a burst) say they bring only events, so the
    worker's replay, backfill and bulk loops do not look for work at each; a wake from the API
    (a replay request) wakes them all, even among events' wakes read at the same time."""
    heard: queue.Queue[str] = queue.Queue()
    for wakes in (["events"], ["events", "everything"]):
        handle = WorkerProcess(settings_in(tmp_path), silent_worker)
        for wake in wakes:  # written before the worker reads: it reads them all at once
            if wake == "events":
                handle.notify_events()
            else:
                handle.notify()
        worker.listen_for_wakes(
            handle._wakes, lambda: heard.put("everything"), lambda: heard.put("events")
        )
        assert heard.get(timeout=2) == wakes[-1]
        time.sleep(0.1)
        assert heard.empty()


def test_a_burst_of_webhooks_wakes_the_worker_once_a_moment(tmp_path: Path) -> None:
    """In a burst the worker is busy and finds the rest itself: one wake per
    `WAKE_EVERY_SECONDS`, not one per webhook."""
    handle = WorkerProcess(settings_in(tmp_path), silent_worker)
    for _ in range(50):
        handle.notify_events()
    wakes = 0
    while handle._wakes.poll():
        handle._wakes.recv_bytes()
        wakes += 1
    assert 1 <= wakes < 50
