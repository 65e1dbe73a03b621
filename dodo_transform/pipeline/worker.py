"""The pipeline in a process of its own, and the HTTP process's handle on it.

`serve` answers webhooks in one process and transforms and delivers them in
another, so the two never compete for one interpreter lock: a burst of
webhooks is stored at full speed while the worker catches up, and a handler
that misbehaves cannot slow the answers Dodo waits for. The two share only the
store and the transforms folder.

The worker reports through two files in the data dir, rewritten every second:
its metrics (which the HTTP process's `/metrics` appends to its own) and a
heartbeat naming its problems. The HTTP process restarts a worker that died,
stopped reporting, or reports a dead or stuck loop, backing off when it keeps
failing. The worker exits when its parent goes away (even after a SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from dodo_transform.metrics import PipelineMetrics
from dodo_transform.outgoing.destination import PausedDestination
from dodo_transform.pipeline.runner import Pipeline
from dodo_transform.settings import Settings

log = logging.getLogger("dodo_transform.worker")
METRICS_FILE = "worker-metrics.prom"
HEARTBEAT_FILE = "worker-heartbeat.json"
POLL_SECONDS = 0.05  # how soon the worker sees an event stored by the HTTP process
# At most one wake this often: the first event after a quiet spell starts the worker at once,
# and in a burst the worker, busy, finds the rest by itself (a wake per webhook cost ingest
# a tenth of its rate in the worker's handling of them).
WAKE_EVERY_SECONDS = 0.01
REPORT_SECONDS = 1.0
WATCH_PARENT_SECONDS = 0.5
STOP_TIMEOUT_SECONDS = 15.0
WORKER_NICENESS = 10
# A new worker loads every transform before its first heartbeat.
STARTUP_GRACE_SECONDS = 30.0
HEARTBEAT_STALE_SECONDS = 10.0
# Restart delays double while restarts keep coming within RESTART_WINDOW_SECONDS.
RESTART_WINDOW_SECONDS = 300.0
MAX_RESTART_DELAY_SECONDS = 60.0

# What a wake says: new events only (ingest's), or new work of any kind (the API's).
NEW_EVENTS = b"e"
ANY_WORK = b"a"

# The worker's entry point: the settings, the HTTP process's pid, and the end of the pipe the
# HTTP process writes to when it has stored new work (`listen_for_wakes`).
WorkerMain = Callable[[Settings, int, Any], None]


class WorkerProcess:
    """The HTTP process's handle on its worker: start, watch, restart, stop."""

    def __init__(self, settings: Settings, target: WorkerMain) -> None:
        self.settings = settings
        self._target = target
        self._context = multiprocessing.get_context("spawn")  # no fork with threads running
        self._process: BaseProcess | None = None
        # Written when this process stored new work: the worker starts on it at once, as a
        # PostgreSQL worker does on a NOTIFY, instead of at its next poll. A pipe written without
        # blocking, so a wake costs a webhook one small write: a multiprocessing Event's set()
        # waits for a waiting reader to wake up, and done per webhook it halved ingest.
        self._wakes, self._waker = self._context.Pipe(duplex=False)
        os.set_blocking(self._waker.fileno(), False)
        self._woken_at = 0.0
        self._started_at = 0.0
        self._restarts: list[float] = []
        self.metrics_file = settings.data_dir / METRICS_FILE
        self.heartbeat_file = settings.data_dir / HEARTBEAT_FILE

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        self.metrics_file.unlink(missing_ok=True)
        self.heartbeat_file.unlink(missing_ok=True)
        self._process = self._context.Process(
            target=self._target,
            args=(self.settings, os.getpid(), self._wakes),
            name="dodo-transform-worker",
        )
        self._process.start()
        self._started_at = time.time()

    def notify(self) -> None:
        """New work of any kind was stored (a replay request, a backfill): wake every loop of
        the worker's pipeline (see `listen_for_wakes`)."""
        self._wake(ANY_WORK)

    def notify_events(self) -> None:
        """New events were stored: wake the worker's transform loop, unless it was woken a
        moment ago (`WAKE_EVERY_SECONDS`)."""
        now = time.monotonic()
        if now - self._woken_at < WAKE_EVERY_SECONDS:
            return
        self._woken_at = now
        self._wake(NEW_EVENTS)

    def _wake(self, kind: bytes) -> None:
        # Full: the worker has wakes enough waiting to be read; closed: stopping.
        with contextlib.suppress(OSError):
            self._waker.send_bytes(kind)

    def quarantined(self) -> list[tuple[str, str]]:
        """(name, version) of the transform versions the worker has quarantined."""
        try:
            beat = json.loads(self.heartbeat_file.read_text())
        except (OSError, ValueError):
            return []
        return [(str(name), str(version)) for name, version in beat.get("quarantined", [])]

    def paused(self) -> list[PausedDestination]:
        """The destinations the worker's circuit breakers hold paused."""
        try:
            beat = json.loads(self.heartbeat_file.read_text())
            return [PausedDestination.from_json(shown) for shown in beat.get("paused", [])]
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def problems(self) -> list[str]:
        """Why the worker cannot work now, from its liveness and its last heartbeat."""
        if not self.alive:
            return ["the worker process is not running"]
        now = time.time()
        try:
            beat = json.loads(self.heartbeat_file.read_text())
        except (OSError, ValueError):
            if now - self._started_at < STARTUP_GRACE_SECONDS:
                return []  # still loading its transforms
            return ["the worker process has never reported"]
        age = now - float(beat.get("at", 0))
        if age > HEARTBEAT_STALE_SECONDS:
            return [f"the worker process has not reported for {age:.0f} s"]
        return [str(problem) for problem in beat.get("problems", [])]

    async def supervise(self, stop: asyncio.Event) -> None:
        """Restart the worker when it is not working (its work is in the store: none is lost)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REPORT_SECONDS)
            if stop.is_set():
                return
            problems = self.problems()
            if not problems:
                continue
            delay = self._restart_delay()
            code = self._process.exitcode if self._process else None
            log.error(
                "worker process died, restarting" if not self.alive else "worker stuck, restarting",
                extra={"problems": problems, "exit_code": code, "delay_s": delay},
            )
            await asyncio.to_thread(self.stop)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if not stop.is_set():
                self.start()

    def _restart_delay(self) -> float:
        """0 for the first restart in a while; then 1, 2, 4 ... s, so a crash loop backs off."""
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW_SECONDS]
        self._restarts.append(now)
        recent = len(self._restarts) - 1
        return 0.0 if recent == 0 else min(MAX_RESTART_DELAY_SECONDS, 2.0 ** (recent - 1))

    def stop(self) -> None:
        """Ask the worker to finish or release its work; kill it if it takes too long."""
        if self._process is None:
            return
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(STOP_TIMEOUT_SECONDS)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)

    def metrics_text(self) -> bytes:
        try:
            return self.metrics_file.read_bytes()
        except FileNotFoundError:
            return b""


async def report(
    pipeline: Pipeline, metrics: PipelineMetrics, data_dir: Path, stop: asyncio.Event
) -> None:
    """In the worker: publish metrics and a heartbeat every second until stopped."""
    while not stop.is_set():
        beat = {
            "at": time.time(),
            "pid": os.getpid(),
            "problems": pipeline.problems(),
            "quarantined": pipeline.transforming.quarantined(),
            "paused": [asdict(paused) for paused in pipeline.paused()],
        }
        _replace(data_dir / HEARTBEAT_FILE, json.dumps(beat).encode())
        _replace(data_dir / METRICS_FILE, metrics.render())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), REPORT_SECONDS)


def listen_for_wakes(
    wakes: Connection, notify: Callable[[], object], notify_events: Callable[[], object]
) -> None:
    """In the worker: whenever the HTTP process has written to `wakes`, call `notify_events`
    if all it wrote meanwhile were new events, else `notify`; once for all of it (from a thread
    of its own: both must be safe to call from one)."""

    def listen() -> None:
        while True:
            try:
                kinds = {wakes.recv_bytes()}
                while wakes.poll():
                    kinds.add(wakes.recv_bytes())
            except (EOFError, OSError):
                return  # the HTTP process is gone: `exit_with_parent` stops the worker
            with contextlib.suppress(RuntimeError):  # the event loop is closed: stopping
                (notify_events if kinds == {NEW_EVENTS} else notify)()

    threading.Thread(target=listen, name="listen-wakes", daemon=True).start()


def exit_with_parent(parent_pid: int, request_stop: Callable[[], object]) -> None:
    """In the worker: stop when the HTTP process is gone, however it went.

    A thread, so that it acts even if the event loop is stuck: it asks for a graceful
    stop first (leases released, in-flight results recorded), and ends the process
    outright if that has not happened within `STOP_TIMEOUT_SECONDS`.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(WATCH_PARENT_SECONDS)
        log.warning("parent process gone, worker stopping")
        with contextlib.suppress(RuntimeError):  # the event loop may be closed already
            request_stop()
        time.sleep(STOP_TIMEOUT_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def _replace(path: Path, content: bytes) -> None:
    staging = path.with_suffix(".tmp")
    staging.write_bytes(content)
    staging.replace(path)  # the HTTP process never reads half a file
