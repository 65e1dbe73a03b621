"""The pipeline: stored events -> every enabled transform -> stored deliveries -> sent.

Three loops on the event loop, each claiming work from the store with a lease
(the transform stage, the delivery stage, and replays asked for through the
API), plus pruning. Nothing is held only in memory: a crash at any point
leaves work in the store, claimable again when its lease runs out (at once,
after a restart).

`problems()` is the pipeline's heartbeat: a loop that died, or a step that has
run for longer than a lease, is named there, so the process that supervises
the pipeline can report it and restart it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dodo_transform.alerts import Alerter
from dodo_transform.errors import StorageError
from dodo_transform.outbound.ratelimit import RateLimiter
from dodo_transform.outgoing.destination import PausedDestination
from dodo_transform.pipeline import backfill, bulk_replay
from dodo_transform.pipeline.delivery_stage import DeliveryStage
from dodo_transform.pipeline.duplicates import DuplicateCheck
from dodo_transform.pipeline.replay import run_requested
from dodo_transform.pipeline.transform_stage import RunAll, TransformStage
from dodo_transform.pipeline.versions import CHECK_SECONDS, VersionRecorder
from dodo_transform.store import DeliveryStatus, Store
from dodo_transform.transforms.registry import Registry
from dodo_transform.transforms.sandbox_processes import PoolClosed, SandboxPool

log = logging.getLogger("dodo_transform.pipeline")
T = TypeVar("T")
IDLE_POLL_SECONDS = 0.5
STORE_RETRY_SECONDS = 1.0
STEP_FAILED_BACKOFF_SECONDS = 5.0
PRUNE_EVERY_SECONDS = 3600.0
REPLAY_CLAIM_LIMIT = 100
BULK_STEP_SECONDS = 0.2  # a bulk replay step is this long a share of its pace
ALERT_CHECK_SECONDS = 5.0
DRAIN_AT_LEAST_SECONDS = 0.5
# Claims are renewed every third of their lease while the work runs, so the lease can be short:
# when an instance dies, another takes its work over once this has passed.
CLAIM_LEASE_SECONDS = 15.0
# With a store that wakes the pipeline on new work (PostgreSQL's LISTEN), polling is only the
# fallback: for retries that come due by time, and work a dead instance left.
LISTENING_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Timing:
    """The pipeline's clocks: how long a step may run before it counts as stuck, how long a
    claim lasts unrenewed, how often an idle loop looks for work, how long settled events are
    kept, and the Segment pace the instances running a pipeline share."""

    step_limit_seconds: float = 60.0
    claim_lease_seconds: float = CLAIM_LEASE_SECONDS
    idle_poll_seconds: float = IDLE_POLL_SECONDS
    retention_days: int = 14
    # Days kept per status, over `retention_days` (see `Store.prune`).
    retention_by_status: Mapping[DeliveryStatus, int] = field(default_factory=dict)
    segment_requests_per_second: float = 50.0
    bulk_replay_per_second: float = 20.0


async def in_thread(method: Callable[..., T], *args: Any) -> T:
    """A store call, off the event loop."""
    return await asyncio.to_thread(method, *args)


class Pipeline:
    """Runs the transform, delivery, replay and backfill loops until stopped, on stages made
    for it (see `assembly.build_pipeline`)."""

    def __init__(
        self,
        *,
        store: Store,
        registry: Registry,
        transforming: TransformStage,
        delivering: DeliveryStage,
        limiter: RateLimiter,
        executor: ThreadPoolExecutor,
        run_all: RunAll,
        sandboxes: SandboxPool | None,
        alerts: Alerter | None,
        timing: Timing,
        due: asyncio.Event,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`due` is set by whoever stores deliveries or frees a lane (the delivering stage);
        `limiter` paces Segment, shared with the other instances running a pipeline."""
        self.store = store
        self.registry = registry
        self.transforming = transforming
        self.delivering = delivering
        self.limiter = limiter
        self.timing = timing
        self.alerts = alerts
        self._executor = executor  # waits on the sandbox processes (or runs handlers)
        self._run_all = run_all
        self._sandboxes = sandboxes
        self._clock = clock
        self._idle_poll = timing.idle_poll_seconds
        self.lease_seconds = timing.claim_lease_seconds
        self._work = asyncio.Event()
        self._due = due
        self._replays = asyncio.Event()
        self._backfills = asyncio.Event()
        self._bulk = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._renewer: asyncio.Task[None] | None = None  # runs until the loops have stopped
        self._unlisten: Callable[[], None] | None = None
        self._step_started: dict[str, float] = {}  # loop name -> when its current step began
        self._watcher: asyncio.Task[None] | None = None
        self.versions = VersionRecorder(store, registry)
        self._recorder: asyncio.Task[None] | None = None
        self.duplicates = DuplicateCheck(registry, run_all)
        self._duplicate_check: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._loop("transform", self._transform_some, self._work)),
            asyncio.create_task(self._loop("deliver", self.delivering.step, self._due)),
            asyncio.create_task(self._loop("replay", self._replay_some, self._replays)),
            asyncio.create_task(self._loop("backfill", self._backfill_some, self._backfills)),
            asyncio.create_task(self._loop("bulk replay", self._bulk_replay_some, self._bulk)),
            asyncio.create_task(self._prune_periodically(), name="prune"),
        ]
        for task, name in zip(
            self._tasks,
            ("transform", "deliver", "replay", "backfill", "bulk replay", "prune"),
            strict=True,
        ):
            task.set_name(name)
        self._renewer = asyncio.create_task(self._renew_periodically(), name="renew")
        self._recorder = asyncio.create_task(self._record_versions(), name="versions")
        self._duplicate_check = asyncio.create_task(
            self.duplicates.watch(self._executor), name="duplicates"
        )
        if self.alerts is not None:
            await self.alerts.start()
            self._watcher = asyncio.create_task(self._alert_on_load_errors(), name="watch")
        loop = asyncio.get_running_loop()

        def wake(events_only: bool) -> None:  # called on the store's listening thread
            loop.call_soon_threadsafe(self.notify_events if events_only else self.notify)

        self._unlisten = self.store.listen(wake)
        if self._unlisten is not None:
            self._idle_poll = max(self._idle_poll, LISTENING_POLL_SECONDS)

    def notify(self) -> None:
        """A new event, replay request or backfill was stored: start on it now, not at the next
        poll."""
        self.notify_events()
        self._replays.set()
        self._backfills.set()
        self._bulk.set()

    def notify_events(self) -> None:
        """New events were stored (ingest's wake, up to a hundred a second in a burst): only the
        transform loop starts at once. The replay, backfill and bulk loops are not sent to look
        for requests of theirs that this wake does not bring."""
        self._work.set()

    def paused(self) -> list[PausedDestination]:
        """The destinations its circuit breakers hold paused now."""
        return self.delivering.paused()

    def problems(self) -> list[str]:
        """What keeps the pipeline from working now: dead loops and stuck steps."""
        tasks = [*self._tasks, *([self._renewer] if self._renewer else [])]
        found = (
            [f"the {task.get_name()} loop has stopped" for task in tasks if task.done()]
            if not self._stopping.is_set()
            else []
        )
        now = time.monotonic()
        stuck_after = self.timing.step_limit_seconds
        for name, started in self._step_started.items():
            if now - started > stuck_after:
                found.append(f"the {name} loop has been stuck for {now - started:.0f} s")
        return found

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming work, let in-flight work finish for `timeout`, release the rest."""
        self._stopping.set()
        if self._unlisten is not None:
            self._unlisten()
        for wake in (self._work, self._due, self._replays, self._backfills, self._bulk):
            wake.set()
        if self._recorder is not None:
            self._recorder.cancel()
            await asyncio.gather(self._recorder, return_exceptions=True)
        if self._duplicate_check is not None:
            self._duplicate_check.cancel()
            await asyncio.gather(self._duplicate_check, return_exceptions=True)
        started = time.monotonic()
        _, pending = await asyncio.wait(self._tasks, timeout=timeout) if self._tasks else ((), ())
        if self._sandboxes is not None:
            # Ends runs still waiting (their events stay claimable: no outcome is recorded).
            await asyncio.to_thread(self._sandboxes.close)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        # Only now, with no step left to hand them more: the sends in flight may finish.
        left = max(DRAIN_AT_LEAST_SECONDS, timeout - (time.monotonic() - started))
        held = await self.delivering.drain(left)
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
        if held:
            try:
                await self._store(self.store.release, sorted(held))
            except StorageError as error:
                log.warning("could not release in-flight deliveries: %s", error)
        self._executor.shutdown(wait=False, cancel_futures=True)
        await self.delivering.dispatcher.sender.close()
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        if self.alerts is not None:
            await self.alerts.stop()

    async def _loop(
        self, name: str, step: Callable[[], Awaitable[bool]], wake: asyncio.Event
    ) -> None:
        while not self._stopping.is_set():
            self._step_started[name] = time.monotonic()
            try:
                busy = await step()
            except StorageError as error:
                log.error("store unavailable, retrying: %s", error)
                await asyncio.sleep(STORE_RETRY_SECONDS)
                continue
            except PoolClosed:
                return  # stopping
            except Exception:
                # A bug must not stop the loop for good: say so loudly and try again later.
                log.exception("pipeline %s step failed, retrying", name)
                await asyncio.sleep(STEP_FAILED_BACKOFF_SECONDS)
                continue
            finally:
                self._step_started.pop(name, None)
            if not busy:
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self._idle_poll)

    async def _store(self, method: Callable[..., T], *args: Any) -> T:
        return await in_thread(method, *args)

    async def _transform_some(self) -> bool:
        busy = await self.transforming.step()
        if busy:
            self._due.set()
        return busy

    async def _replay_some(self) -> bool:
        requests = await self._store(
            self.store.claim_replays, REPLAY_CLAIM_LIMIT, self.lease_seconds
        )
        loop = asyncio.get_running_loop()
        for request in requests:
            await loop.run_in_executor(
                self._executor,
                run_requested,
                self.store,
                self.registry,
                request.delivery_id,
                self._run_all,
            )
        if requests:
            self._due.set()
        return bool(requests)

    async def _backfill_some(self) -> bool:
        """One step of the oldest unfinished backfill, then a pause that keeps the backfill at
        one event per request the destination's rate limit allows (see pipeline/backfill.py)."""
        unfinished = await self._store(self.store.unfinished_backfills)
        if not unfinished:
            return False
        loop = asyncio.get_running_loop()
        taken = await loop.run_in_executor(
            self._executor,
            backfill.run_step,
            self.store,
            self.registry,
            unfinished[0],
            self._run_all,
        )
        if taken:
            self._due.set()
            rate = self.limiter.rate
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), taken / rate)
        return True

    async def _bulk_replay_some(self) -> bool:
        """A step of the oldest running bulk replay, then a pause that keeps it at
        `bulk_replay_per_second` (see pipeline/bulk_replay.py)."""
        running = await self._store(self.store.unfinished_bulk_replays)
        if not running:
            return False
        rate = self.timing.bulk_replay_per_second
        # Steps of a fifth of a second's worth: a cancel is seen within one delivery anyway.
        limit = max(1, int(rate * BULK_STEP_SECONDS))
        loop = asyncio.get_running_loop()
        taken = await loop.run_in_executor(
            self._executor,
            bulk_replay.run_step,
            self.store,
            self.registry,
            running[0],
            self._run_all,
            limit,
        )
        if taken:
            self._due.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), taken / rate)
        return True

    async def _alert_on_load_errors(self) -> None:
        """Alert when a transform stops loading (the file is the source of truth: an edit
        breaks it whether or not events arrive)."""
        assert self.alerts is not None
        while True:
            # The error says what to fix (the file, or a variable to set); the folder reloads.
            for name, error in self.registry.errors.items():
                self.alerts.raise_alert(
                    "broken",
                    name,
                    f"transform {name} does not load: {error}. The last good version, if any, "
                    "stays in service until it does.",
                )
            settings_error = self.registry.settings_error
            if settings_error:
                self.alerts.raise_alert(
                    "broken",
                    "transforms.toml",
                    f"transforms.toml is not taken in where it is bad: {settings_error}",
                )
            await asyncio.sleep(ALERT_CHECK_SECONDS)

    async def _record_versions(self) -> None:
        """Keep every version in service in the store's history (see `versions.py`)."""
        while True:
            try:
                added = await self._store(self.versions.record_new)
                if added:
                    log.info("transform versions recorded", extra={"versions": added})
            except StorageError as error:
                log.error("could not record transform versions, retrying: %s", error)
            await asyncio.sleep(CHECK_SECONDS)

    async def _renew_periodically(self) -> None:
        """Keep this process's claims alive while it works on them (until cancelled by `stop`,
        after the loops: in-flight work stays ours while it drains)."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                await self._store(self.store.renew, self.lease_seconds)
                await self._share_rate()
            except StorageError as error:
                log.error("could not renew leases, retrying: %s", error)

    async def _share_rate(self) -> None:
        """Each of N live pipelines sends at 1/N of the configured rate."""
        workers = await self._store(self.store.live_workers, 3 * self.lease_seconds)
        rate = self.timing.segment_requests_per_second / workers
        if rate != self.limiter.rate:
            log.info("destination rate shared", extra={"pipelines": workers, "rate": rate})
            self.limiter.rate = rate

    async def _prune_periodically(self) -> None:
        while not self._stopping.is_set():
            now = self._clock()
            cutoff = now - self.timing.retention_days * 86400
            by_status = {
                status: now - days * 86400
                for status, days in self.timing.retention_by_status.items()
            }
            try:
                pruned = await self._store(self.store.prune, cutoff, by_status)
                if pruned:
                    log.info("pruned old events", extra={"events": pruned})
            except StorageError as error:
                log.error("pruning failed: %s", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), PRUNE_EVERY_SECONDS)
