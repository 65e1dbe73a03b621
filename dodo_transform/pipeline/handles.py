"""The service's handle on its pipeline, wherever the pipeline runs.

One interface (`PipelineHandle`), three places: in this process (`Here`), in a worker process
this one starts and supervises (`InWorker`), or on other instances sharing the database
(`Elsewhere`, an ingest-only instance). The service asks its handle and never which it is.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from dodo_transform.metrics import PipelineMetrics
from dodo_transform.outgoing.destination import PausedDestination
from dodo_transform.pipeline.runner import Pipeline
from dodo_transform.pipeline.worker import WorkerProcess


class PipelineHandle(Protocol):
    def notify(self) -> None:
        """New work was stored: start on it now if the pipeline can hear it."""
        ...

    def notify_events(self) -> None:
        """New events were stored (and nothing else): start transforming them now."""
        ...

    def problems(self) -> list[str]:
        """Why the pipeline cannot work now (empty when it can)."""
        ...

    def quarantined(self) -> list[tuple[str, str]]: ...
    def paused(self) -> list[PausedDestination]: ...
    def metrics_text(self) -> bytes: ...
    async def start(self, stopping: asyncio.Event) -> None: ...
    async def stop(self) -> None: ...


class Here:
    """The pipeline runs in this process."""

    def __init__(self, pipeline: Pipeline, metrics: PipelineMetrics) -> None:
        self.pipeline = pipeline
        self._metrics = metrics

    def notify(self) -> None:
        self.pipeline.notify()

    def notify_events(self) -> None:
        self.pipeline.notify_events()

    def problems(self) -> list[str]:
        return self.pipeline.problems()

    def quarantined(self) -> list[tuple[str, str]]:
        return self.pipeline.transforming.quarantined()

    def paused(self) -> list[PausedDestination]:
        return self.pipeline.paused()

    def metrics_text(self) -> bytes:
        return self._metrics.render()

    async def start(self, stopping: asyncio.Event) -> None:
        await self.pipeline.start()

    async def stop(self) -> None:
        await self.pipeline.stop()


class InWorker:
    """The pipeline runs in a worker process this one starts, watches and restarts; what it
    knows of it comes from the worker's heartbeat and metrics files."""

    def __init__(self, worker: WorkerProcess) -> None:
        self.worker = worker
        self._supervisor: asyncio.Task[None] | None = None

    def notify(self) -> None:
        self.worker.notify()

    def notify_events(self) -> None:
        self.worker.notify_events()

    def problems(self) -> list[str]:
        return self.worker.problems()

    def quarantined(self) -> list[tuple[str, str]]:
        return self.worker.quarantined()

    def paused(self) -> list[PausedDestination]:
        return self.worker.paused()

    def metrics_text(self) -> bytes:
        return self.worker.metrics_text()

    async def start(self, stopping: asyncio.Event) -> None:
        self.worker.start()
        self._supervisor = asyncio.create_task(self.worker.supervise(stopping), name="supervise")

    async def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        await asyncio.to_thread(self.worker.stop)


class Elsewhere:
    """No pipeline here: other instances run it (this one takes webhooks and the API)."""

    def notify(self) -> None:
        """The others hear of new work from the database (PostgreSQL's NOTIFY)."""

    def notify_events(self) -> None:
        """As `notify`."""

    def problems(self) -> list[str]:
        return []

    def quarantined(self) -> list[tuple[str, str]]:
        return []

    def paused(self) -> list[PausedDestination]:
        return []

    def metrics_text(self) -> bytes:
        return b""

    async def start(self, stopping: asyncio.Event) -> None:
        return None

    async def stop(self) -> None:
        return None
