"""The pipeline: stored events -> every enabled transform -> stored deliveries -> sent.

Two loops on the event loop, each claiming work from the store with a lease:
- the transform loop runs every enabled transform on each new event in a
  thread pool (QuickJS releases the GIL) and stores all outcomes for the event
  in one transaction;
- the delivery loop claims due deliveries, hands them to the `Dispatcher`
  (Segment batches, retries, rate limits) and stores every result in one
  transaction: `delivered`, `pending` for a retry, `dead`, `blocked` or
  `dry_run`.
Nothing is held only in memory: a crash at any point leaves work in the store,
claimable again when its lease runs out (at once, after a restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from dodo_transform.errors import DodoTransformError, StorageError
from dodo_transform.metrics import PipelineMetrics
from dodo_transform.outbound import batching, segment
from dodo_transform.outbound.dispatcher import Dispatcher, Result
from dodo_transform.outbound.ratelimit import RateLimiter
from dodo_transform.outbound.sender import Deliverer
from dodo_transform.settings import Settings
from dodo_transform.store.sqlite import REPLAYABLE_STATUSES, NewDelivery, Store, StoredEvent
from dodo_transform.transforms.engine import Event, Outcome, OutcomeKind, Transform
from dodo_transform.transforms.registry import Registry

log = logging.getLogger("dodo_transform.pipeline.runner")
T = TypeVar("T")
IDLE_POLL_SECONDS = 0.5
STORE_RETRY_SECONDS = 1.0
PRUNE_EVERY_SECONDS = 3600.0
CLAIM_LIMIT = 2000
FLUSH_SECONDS = 0.25
EVENT_CLAIM_LIMIT = 64
TRANSFORM_LINGER_SECONDS = 0.01
# A transform version that hits its time, memory or stack limit this many events in a row is
# not run again until the file changes: each run would cost its full limit and hold up the
# healthy transforms. Its events are stored as `failed`, so a replay recovers them.
STRIKES = 3
QUARANTINED = Outcome(
    OutcomeKind.ERROR,
    error=f"quarantined: this version hit its resource limit on {STRIKES} events in a row; "
    "fix the file (it reloads by itself) and replay the failed deliveries",
)


class ReplayError(DodoTransformError):
    """A delivery cannot be replayed (unknown, not failed or dead, or its transform is gone)."""


def outcome_deliveries(transform: Transform, outcome: Outcome) -> list[NewDelivery]:
    """What to store for one transform's outcome on one event."""
    logs: list[Any] = [list(line) for line in outcome.logs]

    def item(index: int, status: str, **rest: Any) -> NewDelivery:
        return NewDelivery(transform.name, transform.version, index, status, logs=logs, **rest)

    if outcome.kind is OutcomeKind.ERROR:
        return [item(0, "failed", error=outcome.error)]
    if outcome.kind is not OutcomeKind.DELIVER:
        return [item(0, outcome.kind.value)]
    deliveries = []
    for index, request in enumerate(outcome.requests):
        problems = segment.drops(request.url, request.payload)
        status, error = ("invalid", "; ".join(problems)) if problems else ("pending", None)
        deliveries.append(item(index, status, request=request.to_json(redact=False), error=error))
    return deliveries


def write_key_for(settings: Settings, registry: Registry, transform: str) -> str | None:
    """The transform's own write key from transforms.toml, else SEGMENT_WRITE_KEY."""
    own = registry.settings(transform).write_key
    if own:
        return own
    key = settings.segment_write_key
    return key.get_secret_value() if key is not None else None


def replay(store: Store, registry: Registry, delivery_id: int) -> list[NewDelivery]:
    """Re-run the current version of a failed or dead delivery's transform on its stored event.

    The old outcome is marked `replayed`; the new one is stored for the pipeline to deliver.
    """
    delivery = store.get_delivery(delivery_id)
    if delivery is None:
        raise ReplayError(f"no delivery {delivery_id}")
    if delivery.status not in REPLAYABLE_STATUSES:
        raise ReplayError(
            f"delivery {delivery_id} is {delivery.status}; "
            "only failed or dead deliveries are replayed"
        )
    transform = registry.current().get(delivery.transform)
    if transform is None:
        raise ReplayError(f"transform {delivery.transform} is no longer loaded")
    stored = store.get_event(delivery.event_id)
    if stored is None:
        raise ReplayError(f"the event of delivery {delivery_id} has been pruned")
    event = Event(stored.event_type, stored.body.decode("utf-8"), stored.webhook_id)
    results = outcome_deliveries(transform, transform.run(event))
    store.replace_outcomes(stored.id, transform.name, results)
    log.info(
        "replayed",
        extra={
            "webhook_id": stored.webhook_id,
            "transform": transform.name,
            "version": transform.version,
            "delivery_id": delivery_id,
        },
    )
    return results


class Pipeline:
    """Runs the transform and delivery loops until stopped."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        registry: Registry,
        dispatcher: Dispatcher,
        metrics: PipelineMetrics,
        clock: Callable[[], float] = time.time,
        idle_poll_seconds: float = IDLE_POLL_SECONDS,
    ) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.dispatcher = dispatcher
        self.metrics = metrics
        self._clock = clock
        self._idle_poll = idle_poll_seconds
        self._executor = ThreadPoolExecutor(settings.transform_threads, "transform")
        self._work = asyncio.Event()
        self._due = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._sending: set[int] = set()
        self._quarantine: dict[tuple[str, str], int] = {}  # (name, version) -> limit strikes

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        store: Store,
        registry: Registry,
        metrics: PipelineMetrics,
        *,
        idle_poll_seconds: float = IDLE_POLL_SECONDS,
    ) -> Pipeline:
        """The pipeline with its HTTP client, rate limiter and dispatcher, as configured."""
        deliverer = Deliverer(
            segment_base_url=settings.segment_base_url,
            allowed_hosts=settings.extra_allowed_hosts,
            timeout=settings.delivery_timeout,
        )
        dispatcher = Dispatcher(
            deliverer,
            write_key_for=partial(write_key_for, settings, registry),
            limiter=RateLimiter(settings.segment_requests_per_second),
            dry_run=settings.dry_run,
            retry_base_seconds=settings.retry_base_seconds,
            concurrency=settings.delivery_concurrency,
            batch_size=settings.segment_batch_size,
        )
        return cls(
            settings=settings,
            store=store,
            registry=registry,
            dispatcher=dispatcher,
            metrics=metrics,
            idle_poll_seconds=idle_poll_seconds,
        )

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._loop(self._transform_some, self._work), name="transform"),
            asyncio.create_task(self._loop(self._deliver_some, self._due), name="deliver"),
            asyncio.create_task(self._prune_periodically(), name="prune"),
        ]

    def notify(self) -> None:
        """A new event was stored: start on it now rather than at the next poll."""
        self._work.set()

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming work, let in-flight work finish for `timeout`, release the rest."""
        self._stopping.set()
        self._work.set()
        self._due.set()
        _, pending = await asyncio.wait(self._tasks, timeout=timeout) if self._tasks else ((), ())
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if self._sending:
            try:
                await self._store(self.store.release, sorted(self._sending))
            except StorageError as error:
                log.warning("could not release in-flight deliveries: %s", error)
        self._executor.shutdown(wait=False, cancel_futures=True)
        await self.dispatcher.deliverer.close()

    async def _loop(self, step: Callable[[], Awaitable[bool]], wake: asyncio.Event) -> None:
        while not self._stopping.is_set():
            try:
                busy = await step()
            except StorageError as error:
                log.error("store unavailable, retrying: %s", error)
                await asyncio.sleep(STORE_RETRY_SECONDS)
                continue
            if not busy:
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self._idle_poll)

    async def _store(self, method: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(method, *args)

    # --- transforming -------------------------------------------------------------------------

    async def _transform_some(self) -> bool:
        lease = self.settings.lease_seconds
        events = await self._store(self.store.claim_events, EVENT_CLAIM_LIMIT, lease)
        if not events:
            return False
        if len(events) < EVENT_CLAIM_LIMIT:
            # A burst arrives over a few milliseconds: one claim and one commit for all of it.
            await asyncio.sleep(TRANSFORM_LINGER_SECONDS)
            events += await self._store(
                self.store.claim_events, EVENT_CLAIM_LIMIT - len(events), lease
            )
        transforms = self.registry.current()  # events in flight keep this version
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(loop.run_in_executor(self._executor, self._transform, e, transforms) for e in events)
        )
        outcomes = {event.id: deliveries for event, deliveries in zip(events, results, strict=True)}
        await self._store(self.store.record_outcomes, outcomes)
        self._due.set()
        return True

    def _transform(
        self, stored: StoredEvent, transforms: Mapping[str, Transform]
    ) -> list[NewDelivery]:
        event = Event(stored.event_type, stored.body.decode("utf-8"), stored.webhook_id)
        deliveries: list[NewDelivery] = []
        for name, transform in transforms.items():
            if not self.registry.settings(name).enabled:
                continue
            deliveries.extend(self._run(transform, event))
        log.info(
            "event transformed",
            extra={
                "webhook_id": stored.webhook_id,
                "event_type": stored.event_type,
                "outcomes": {d.transform: d.status for d in deliveries},
            },
        )
        return deliveries

    def _run(self, transform: Transform, event: Event) -> list[NewDelivery]:
        quarantined = self._quarantine.get((transform.name, transform.version), 0) >= STRIKES
        outcome = QUARANTINED if quarantined else transform.run(event)
        if not quarantined:
            self._count_strike(transform, outcome)
        self.metrics.outcomes.labels(transform.name, outcome.kind.value).inc()
        if outcome.error:
            log.warning(
                "transform failed",
                extra={
                    "webhook_id": event.webhook_id,
                    "transform": transform.name,
                    "error": outcome.error,
                },
            )
        deliveries = outcome_deliveries(transform, outcome)
        for delivery in deliveries:
            if delivery.status == "invalid":
                self.metrics.finished.labels(transform.name, "invalid").inc()
                log.warning(
                    "message held back: Segment would drop it",
                    extra={
                        "webhook_id": event.webhook_id,
                        "transform": transform.name,
                        "error": delivery.error,
                    },
                )
        for request in outcome.requests:
            for warning in segment.advice_for(request.url, request.payload):
                log.warning(
                    "segment naming",
                    extra={
                        "webhook_id": event.webhook_id,
                        "transform": transform.name,
                        "warning": warning,
                    },
                )
        return deliveries

    def _count_strike(self, transform: Transform, outcome: Outcome) -> None:
        """Consecutive limit errors put a transform version in quarantine (see QUARANTINED)."""
        key = (transform.name, transform.version)
        if not outcome.hit_limit:
            self._quarantine.pop(key, None)
            return
        self._quarantine[key] = strikes = self._quarantine.get(key, 0) + 1
        if strikes == STRIKES:
            log.error(
                "transform quarantined",
                extra={
                    "transform": transform.name,
                    "version": transform.version,
                    "error": outcome.error,
                },
            )

    # --- delivering ---------------------------------------------------------------------------

    async def _deliver_some(self) -> bool:
        lease = self.settings.lease_seconds
        due = await self._store(self.store.claim_deliveries, CLAIM_LIMIT, lease)
        if not due:
            return False
        waited = self._clock() - min(max(d.created_at, d.next_attempt_at) for d in due)
        batching_on = self.settings.segment_batch_size > 1
        if batching_on and len(due) < batching.MAX_BATCH_MESSAGES and waited < FLUSH_SECONDS:
            # Like Segment's SDKs: send a full batch now, or whatever is due once the oldest
            # message has waited FLUSH_SECONDS, so a burst goes out in few requests.
            await asyncio.sleep(FLUSH_SECONDS - waited)
            due += await self._store(self.store.claim_deliveries, CLAIM_LIMIT - len(due), lease)
        self._sending.update(d.id for d in due)
        try:
            results = await self.dispatcher.dispatch(due)
            await self._store(self.store.record_results, [r.update() for r in results])
        finally:
            self._sending.difference_update(d.id for d in due)
        for result in results:
            self._account(result)
        return True

    def _account(self, result: Result) -> None:
        delivery, status, attempt = result.delivery, result.status, result.attempt
        if status == "delivered":
            self.metrics.delivered.labels(delivery.transform).inc()
            self.metrics.latency.observe(max(0.0, self._clock() - delivery.received_at))
        elif status == "pending":
            if attempt is not None:
                self.metrics.retried.labels(delivery.transform).inc()
        else:
            self.metrics.finished.labels(delivery.transform, status).inc()
        fields: dict[str, Any] = {
            "webhook_id": delivery.webhook_id,
            "transform": delivery.transform,
            "delivery_id": delivery.id,
            "status": "retrying" if status == "pending" and attempt else status,
        }
        if result.error:
            fields["error"] = result.error
        if attempt is not None:
            fields |= {
                "http_status": attempt.status_code,
                "duration_ms": round(attempt.duration_ms, 1),
            }
        log.info("delivery attempt", extra=fields)

    # --- replay and retention -----------------------------------------------------------------

    async def _prune_periodically(self) -> None:
        while not self._stopping.is_set():
            cutoff = self._clock() - self.settings.retention_days * 86400
            try:
                pruned = await self._store(self.store.prune, cutoff)
                if pruned:
                    log.info("pruned old events", extra={"events": pruned})
            except StorageError as error:
                log.error("pruning failed: %s", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), PRUNE_EVERY_SECONDS)


def _ms_since(started: float) -> float:
    return (time.monotonic() - started) * 1000
