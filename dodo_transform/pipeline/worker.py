"""The pipeline in a process of its own.

`serve` answers webhooks in one process and transforms and delivers them in
another, so the two never compete for one interpreter lock: a burst of
webhooks is stored at full speed while the worker catches up, and a handler
that misbehaves cannot slow the answers Dodo waits for. The two share only the
store (SQLite in WAL mode takes writers from both) and the transforms folder.

The worker polls the store for new work, exits when its parent goes away
(even after a SIGKILL), and leaves its metrics in a file that the HTTP
process's `/metrics` appends to its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
from multiprocessing.process import BaseProcess
from pathlib import Path

from dodo_transform import logs
from dodo_transform.metrics import PipelineMetrics
from dodo_transform.pipeline.runner import Pipeline
from dodo_transform.settings import Settings
from dodo_transform.store.sqlite import SqliteStore
from dodo_transform.transforms.registry import Registry
from dodo_transform.transforms.reload import reload_on_change

log = logging.getLogger("dodo_transform.pipeline.worker")
METRICS_FILE = "worker-metrics.prom"
POLL_SECONDS = 0.05  # how soon the worker sees an event stored by the HTTP process
WATCH_PARENT_SECONDS = 0.5
STOP_TIMEOUT_SECONDS = 15.0
WORKER_NICENESS = 10


class WorkerProcess:
    """The HTTP process's handle on its worker: start, watch, restart, stop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._context = multiprocessing.get_context("spawn")  # no fork with threads running
        self._process: BaseProcess | None = None
        self.metrics_file = settings.data_dir / METRICS_FILE

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def start(self) -> None:
        self.metrics_file.unlink(missing_ok=True)
        self._process = self._context.Process(
            target=main, args=(self.settings, os.getpid()), name="dodo-transform-worker"
        )
        self._process.start()

    async def supervise(self, stop: asyncio.Event) -> None:
        """Restart the worker if it dies (its work is in the store: nothing is lost)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            if not stop.is_set() and not self.alive:
                code = self._process.exitcode if self._process else None
                log.error("worker process died, restarting", extra={"exit_code": code})
                self.start()

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


def main(settings: Settings, parent_pid: int) -> None:
    """The worker process's entry point."""
    # Answering Dodo comes first: when both want the CPU, the kernel favours the HTTP
    # process, and the worker catches up in the gaps (its work is safe in the store).
    os.nice(WORKER_NICENESS)
    listener = logs.setup()
    try:
        asyncio.run(_run(settings, parent_pid))
    finally:
        listener.stop()


async def _run(settings: Settings, parent_pid: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    store = SqliteStore(settings.database, durable=False)
    registry = Registry(settings.transforms, settings.limits)
    await asyncio.to_thread(registry.reload)
    metrics = PipelineMetrics()
    pipeline = Pipeline.from_settings(
        settings, store, registry, metrics, idle_poll_seconds=POLL_SECONDS
    )
    await pipeline.start()
    helpers = [
        asyncio.create_task(reload_on_change(registry, stop)),
        asyncio.create_task(_watch_parent(parent_pid, stop)),
        asyncio.create_task(_publish_metrics(metrics, settings.data_dir / METRICS_FILE, stop)),
    ]
    log.info("worker started", extra={"pid": os.getpid()})
    await stop.wait()
    await pipeline.stop()
    for task in helpers:
        task.cancel()
    await asyncio.gather(*helpers, return_exceptions=True)
    store.close()
    log.info("worker stopped")


async def _watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    """Stop when the HTTP process is gone, however it went."""
    while not stop.is_set():
        if os.getppid() != parent_pid:
            log.warning("parent process gone, worker stopping")
            stop.set()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), WATCH_PARENT_SECONDS)


async def _publish_metrics(metrics: PipelineMetrics, path: Path, stop: asyncio.Event) -> None:
    while not stop.is_set():
        staging = path.with_suffix(".tmp")
        staging.write_bytes(metrics.render())
        staging.replace(path)  # the HTTP process never reads half a file
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
