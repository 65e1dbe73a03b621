"""The transform stage: new events -> every enabled transform -> stored deliveries.

Claims a batch of events with a lease, runs every enabled transform on each
in a thread pool (QuickJS releases the GIL), and stores all outcomes for the
batch in one transaction. A transform version that keeps hitting its resource
limits is quarantined (see `STRIKES`).

Whatever goes wrong with one event is that event's outcome: an exception while
one transform handles it is that transform's `failed` delivery, so the rest of
the event and of the batch are stored as usual and nothing is claimed again
and again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dodo_transform.metrics import PipelineMetrics
from dodo_transform.outbound import segment
from dodo_transform.pipeline.outcomes import outcome_deliveries
from dodo_transform.store import DeliveryStatus, NewDelivery, Store, StoredEvent
from dodo_transform.transforms.engine import Outcome, OutcomeKind, Transform
from dodo_transform.transforms.event import Event
from dodo_transform.transforms.registry import Registry

log = logging.getLogger("dodo_transform.pipeline")
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

StoreCall = Callable[..., Awaitable[Any]]


class TransformStage:
    def __init__(
        self,
        *,
        store: Store,
        registry: Registry,
        metrics: PipelineMetrics,
        executor: ThreadPoolExecutor,
        store_call: StoreCall,
        lease_seconds: float,
    ) -> None:
        self.store = store
        self.registry = registry
        self.metrics = metrics
        self._executor = executor
        self._store = store_call
        self._lease = lease_seconds
        self._quarantine: dict[tuple[str, str], int] = {}  # (name, version) -> limit strikes

    async def step(self) -> bool:
        """Transform one batch of new events; False when there was none."""
        events: list[StoredEvent] = await self._store(
            self.store.claim_events, EVENT_CLAIM_LIMIT, self._lease
        )
        if not events:
            return False
        if len(events) < EVENT_CLAIM_LIMIT:
            # A burst arrives over a few milliseconds: one claim and one commit for all of it.
            await asyncio.sleep(TRANSFORM_LINGER_SECONDS)
            events += await self._store(
                self.store.claim_events, EVENT_CLAIM_LIMIT - len(events), self._lease
            )
        transforms = self.registry.current()  # events in flight keep this version
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(loop.run_in_executor(self._executor, self.transform, e, transforms) for e in events)
        )
        outcomes = {event.id: deliveries for event, deliveries in zip(events, results, strict=True)}
        await self._store(self.store.record_outcomes, outcomes)
        return True

    def transform(
        self, stored: StoredEvent, transforms: Mapping[str, Transform]
    ) -> list[NewDelivery]:
        """Every enabled transform's deliveries for one event (runs on a pool thread)."""
        enabled = [t for name, t in transforms.items() if self.registry.settings(name).enabled]
        try:
            event = Event(stored.event_type, stored.body.decode("utf-8"), stored.webhook_id)
        except UnicodeDecodeError:
            # Ingest only stores UTF-8 bodies; a store written otherwise still ends here.
            error = "the stored event body is not UTF-8 text"
            deliveries = [_failed(transform, error) for transform in enabled]
        else:
            deliveries = [d for transform in enabled for d in self._run_safely(transform, event)]
        log.info(
            "event transformed",
            extra={
                "webhook_id": stored.webhook_id,
                "event_type": stored.event_type,
                "outcomes": {d.transform: d.status.value for d in deliveries},
            },
        )
        return deliveries

    def quarantined(self) -> list[tuple[str, str]]:
        """(name, version) of every transform version in quarantine."""
        return [key for key, strikes in self._quarantine.items() if strikes >= STRIKES]

    def _run_safely(self, transform: Transform, event: Event) -> list[NewDelivery]:
        try:
            return self._run(transform, event)
        except Exception as error:
            log.exception(
                "transform step failed",
                extra={"webhook_id": event.webhook_id, "transform": transform.name},
            )
            return [_failed(transform, f"{type(error).__name__}: {error}")]

    def _run(self, transform: Transform, event: Event) -> list[NewDelivery]:
        quarantined = self._quarantine.get((transform.name, transform.version), 0) >= STRIKES
        outcome = QUARANTINED if quarantined else transform.run(event)
        if not quarantined:
            self._count_strike(transform, outcome)
        self.metrics.outcomes.labels(transform.name, outcome.kind.value).inc()
        context = {"webhook_id": event.webhook_id, "transform": transform.name}
        if outcome.error:
            log.warning("transform failed", extra=context | {"error": outcome.error})
        deliveries = outcome_deliveries(transform, outcome)
        for delivery in deliveries:
            if delivery.status is DeliveryStatus.INVALID:
                self.metrics.finished.labels(transform.name, delivery.status.value).inc()
                log.warning(
                    "message held back: Segment would drop it",
                    extra=context | {"error": delivery.error},
                )
        for request in outcome.requests:
            for warning in segment.advice_for(request.url, request.payload):
                log.warning("segment naming", extra=context | {"warning": warning})
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


def _failed(transform: Transform, reason: str) -> NewDelivery:
    """A failed outcome for something that went wrong around the handler, not in it."""
    error = f"{transform.filename}: could not transform this event: {reason}"
    return NewDelivery(transform.name, transform.version, 0, DeliveryStatus.FAILED, error=error)
