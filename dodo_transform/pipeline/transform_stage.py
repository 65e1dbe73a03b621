"""The transform stage: new events -> every enabled transform -> stored deliveries.

Claims a batch of events with a lease, runs every enabled transform on each
(all in one call to the sandbox processes, where a handler stuck in a built-in
call is stopped: see transforms/sandbox_processes.py), and stores all outcomes
for the batch in one transaction, for the events it still holds under the claim it
took them with (a worker paused past its lease finds them taken, and stores nothing).
A transform version that keeps hitting its resource limits is quarantined (see
transforms/quarantine.py): this stage holds the pipeline's `Quarantine`, counts every
outcome into it, and raises the alert.

Whatever goes wrong with one event is that event's outcome: an exception while
one transform handles it is that transform's `failed` delivery, so the rest of
the event and of the batch are stored as usual and nothing is claimed again
and again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dodo_transform import logs
from dodo_transform.alerts import Alerter
from dodo_transform.metrics import PipelineMetrics
from dodo_transform.outgoing import segment
from dodo_transform.pipeline import hand_off
from dodo_transform.pipeline.outcomes import outcome_deliveries
from dodo_transform.store import (
    DeliveryKey,
    DeliveryStatus,
    EventWork,
    Lane,
    NewDelivery,
    StoredEvent,
)
from dodo_transform.store.records import new_claim
from dodo_transform.tracing import NO_TRACING, Tracing, timed_ns
from dodo_transform.transforms.engine import Outcome, Transform
from dodo_transform.transforms.event import Event
from dodo_transform.transforms.quarantine import QUARANTINED, STRIKES, Quarantine
from dodo_transform.transforms.registry import Registry

log = logging.getLogger("dodo_transform.pipeline")
EVENT_CLAIM_LIMIT = 256
# A round is what crosses to the sandbox processes at once and is stored in one commit: big
# enough that the crossing and the commit cost little per event, bounded in events and bytes
# so that what one round holds stays small (see also BATCH_OUTCOME_BYTES).
EVENTS_PER_ROUND = 64
ROUND_BODY_BYTES = 1024 * 1024
# What a round's outcomes may hold before it ends (handlers returning megabytes): its events
# run a slice at a time, each as many as this allows at the largest outcome per event seen
# lately, starting from 8 events a slice (the worker's first round knows nothing yet).
ROUND_OUTCOME_BYTES = 16 * 1024 * 1024
FIRST_SLICE_EVENTS = 8
TRANSFORM_LINGER_SECONDS = 0.01
# A transform version that hits its time, memory or stack limit this many events in a row is
# not run again until the file changes: each run would cost its full limit and hold up the
# healthy transforms. Its events are stored as `failed`, so a replay recovers them.

StoreCall = Callable[..., Awaitable[Any]]
# Runs (transform, event) pairs and returns their outcomes in order; blocking.
RunAll = Callable[[Sequence[tuple[Transform, Event]]], list[Outcome]]


def run_in_this_process(pairs: Sequence[tuple[Transform, Event]]) -> list[Outcome]:
    """Run handlers on this thread: no backstop for a built-in call that runs on (tests)."""
    return [transform.run(event) for transform, event in pairs]


class TransformStage:
    def __init__(
        self,
        *,
        store: EventWork,
        registry: Registry,
        metrics: PipelineMetrics,
        executor: ThreadPoolExecutor,
        store_call: StoreCall,
        lease_seconds: float,
        run_all: RunAll = run_in_this_process,
        alerts: Alerter | None = None,
        quarantine: Quarantine | None = None,
        receiver: hand_off.Receiver | None = None,
        clock: Callable[[], float] = time.time,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        """`receiver`: the delivery stage, handed each round's new deliveries (None: they
        wait for its claim)."""
        self.store = store
        self.tracing = tracing
        self._receiver = receiver
        self._clock = clock
        self.registry = registry
        self.metrics = metrics
        self._executor = executor
        self._run_all = run_all
        self._store = store_call
        self._lease = lease_seconds
        self.quarantine = quarantine or Quarantine()
        self._flagged: set[str] = set()  # names shown as quarantined in the metrics
        self.alerts = alerts
        # The largest outcome bytes per event of the last slice, or half the one before (it
        # falls back to small outcomes slice by slice, and rises at once for big ones).
        self._outcome_bytes_per_event = ROUND_OUTCOME_BYTES // FIRST_SLICE_EVENTS

    async def step(self) -> bool:
        """Transform one batch of new events; False when there was none."""
        with self.metrics.timed("claim events"):
            events: list[StoredEvent] = await self._store(
                self.store.claim_events, EVENT_CLAIM_LIMIT, self._lease
            )
        if not events:
            return False
        if len(events) < EVENT_CLAIM_LIMIT:
            # A burst arrives over a few milliseconds: one claim and one commit for all of it.
            await asyncio.sleep(TRANSFORM_LINGER_SECONDS)
            with self.metrics.timed("claim events"):
                events += await self._store(
                    self.store.claim_events, EVENT_CLAIM_LIMIT - len(events), self._lease
                )
        transforms = self.registry.current()  # events in flight keep this version
        enabled = [t for name, t in transforms.items() if self.registry.settings(name).enabled]
        loop = asyncio.get_running_loop()
        recording: asyncio.Task[None] | None = None
        left = list(events)
        try:
            while left:
                # A round at a time: what handlers return (up to `ROUND_OUTCOME_BYTES`) is held
                # for two rounds' events at most, not the whole claim's. The sandbox runs one
                # round while the round before it is stored.
                chunk = next_round(left)
                with self.metrics.timed("transform"):
                    results, terms, over = await loop.run_in_executor(
                        self._executor, self.transform, chunk, enabled
                    )
                left = over + left[len(chunk) :]
                done = [event for event in chunk if event.id in results]
                if recording is not None:
                    await recording
                recording = asyncio.create_task(self._record_round(results, done, terms))
        finally:
            if recording is not None:
                await recording
        return True

    async def _record_round(
        self,
        results: dict[int, list[NewDelivery]],
        events: list[StoredEvent],
        terms: dict[int, list[str]],
    ) -> None:
        """Store a round's outcomes (and its events' search terms), for the events still held
        under their claims, and hand the lanes the new deliveries they have room for (see
        `hand_off.py`)."""
        claims = {event.id: event.claim for event in events}
        handing, now = None, self._clock()
        lanes: dict[DeliveryKey, Lane] = {}
        if self._receiver is not None:
            handing, lanes = hand_off.plan(results, self._receiver, new_claim(), now + self._lease)
        with self.metrics.timed("record outcomes"):
            recorded = await self._store(
                self.store.record_outcomes, results, claims, handing, terms
            )
        if recorded.dropped:
            log.warning(
                "outcomes dropped: the events were claimed again after this worker's claim"
                " ran out (another worker or a later claim has them)",
                extra={"event_ids": recorded.dropped},
            )
        if handing is not None and recorded.handed and self._receiver is not None:
            await self._receiver.receive(
                hand_off.deliveries(recorded.handed, lanes, results, events, handing.claim, now)
            )

    def transform(
        self, stored_events: Sequence[StoredEvent], enabled: Sequence[Transform]
    ) -> tuple[dict[int, list[NewDelivery]], dict[int, list[str]], list[StoredEvent]]:
        """Every enabled transform's deliveries for each event it receives (its `events` in
        transforms.toml; blocking: runs off the loop), the search terms of the events run (by
        id, as the deliveries; given by the sandbox processes that ran them, see
        `Event.terms`), and the events left for the next round.

        The handlers run a slice of events at a time (in the sandbox processes, by default),
        as many as `ROUND_OUTCOME_BYTES` of outcomes is expected to hold; the round ends once
        its outcomes hold that much, and the events not run are left over. Quarantined
        versions are not run.
        """
        results: dict[int, list[NewDelivery]] = {}
        runnable: list[tuple[StoredEvent, Event, list[Transform]]] = []
        for stored in stored_events:
            # A transform whose `events` leave this type out stores nothing for it, as a Dodo
            # endpoint not subscribed to it is never sent it.
            receivers = [
                t for t in enabled if self.registry.settings(t.name).receives(stored.event_type)
            ]
            try:
                body = stored.body.decode("utf-8")
                event = Event(stored.event_type, body, stored.webhook_id, stored.mode)
            except UnicodeDecodeError:
                # Ingest only stores UTF-8 bodies; a store written otherwise still ends here.
                error = "the stored event body is not UTF-8 text"
                results[stored.id] = [_failed(transform, error) for transform in receivers]
                continue
            runnable.append((stored, event, receivers))
        held, start = 0, 0
        while start < len(runnable) and held < ROUND_OUTCOME_BYTES:
            size = max(1, (ROUND_OUTCOME_BYTES - held) // self._outcome_bytes_per_event)
            taken = runnable[start : start + size]
            made = self._run_slice(taken, results)
            self._outcome_bytes_per_event = max(
                max(made) if made else 0, self._outcome_bytes_per_event // 2, 1
            )
            held += sum(made)
            start += len(taken)
        for stored in stored_events:  # a line per event: the fast path
            if stored.id in results:
                logs.info(
                    log,
                    "event transformed",
                    webhook_id=stored.webhook_id,
                    event_type=stored.event_type,
                    outcomes={d.transform: d.status.value for d in results[stored.id]},
                )
        terms = {stored.id: event.terms for stored, event, _ in runnable[:start]}
        return results, terms, [stored for stored, _, _ in runnable[start:]]

    def _run_slice(
        self,
        taken: Sequence[tuple[StoredEvent, Event, list[Transform]]],
        results: dict[int, list[NewDelivery]],
    ) -> list[int]:
        """Run these events' transforms at once, their deliveries into `results`; the bytes
        of outcomes each event got."""
        pairs = [(stored, t, event) for stored, event, receivers in taken for t in receivers]
        # Decided once, before recording: recording counts strikes and may quarantine more.
        skip = [self._is_quarantined(transform) for _, transform, _ in pairs]
        to_run = [(t, e) for (_, t, e), skipped in zip(pairs, skip, strict=True) if not skipped]
        with timed_ns() as window:
            ran = iter(self._run_all(to_run))
        sizes = {stored.id: 0 for stored, _, _ in taken}
        for stored, _, _ in taken:
            results[stored.id] = []
        for (stored, transform, event), skipped in zip(pairs, skip, strict=True):
            outcome = QUARANTINED if skipped else next(ran)
            sizes[stored.id] += outcome.size
            made = self._record_safely(transform, event, outcome)
            results[stored.id] += made
            if not skipped and self.tracing.enabled:  # its attributes cost, for every run
                self._trace(stored, transform, made, window)
        return list(sizes.values())

    def _trace(
        self,
        stored: StoredEvent,
        transform: Transform,
        made: Sequence[NewDelivery],
        window: Sequence[int],
    ) -> None:
        """The run's span: its round's times (the round ran at once), its outcome."""
        statuses = ",".join(sorted({d.status.value for d in made})) or "nothing"
        self.tracing.transform_ran(
            stored.webhook_id, stored.event_type, transform.name, statuses, window[0], window[1]
        )

    def quarantined(self) -> list[tuple[str, str]]:
        """(name, version) of every transform version in quarantine."""
        return self.quarantine.quarantined()

    def _is_quarantined(self, transform: Transform) -> bool:
        return self.quarantine.holds((transform.name, transform.version))

    def _record_safely(
        self, transform: Transform, event: Event, outcome: Outcome
    ) -> list[NewDelivery]:
        try:
            return self._record(transform, event, outcome)
        except Exception as error:
            log.exception(
                "transform step failed",
                extra={"webhook_id": event.webhook_id, "transform": transform.name},
            )
            return [_failed(transform, f"{type(error).__name__}: {error}")]

    def _record(self, transform: Transform, event: Event, outcome: Outcome) -> list[NewDelivery]:
        """Count, log and turn into deliveries one transform's outcome on one event."""
        if outcome is not QUARANTINED:
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
        version = (transform.name, transform.version)
        if not self.quarantine.record(version, outcome.hit_limit):
            if not outcome.hit_limit and transform.name in self._flagged:
                self._flagged.discard(transform.name)  # a version that runs well again
                self.metrics.quarantined.labels(transform.name).set(0)
            return
        self._flagged.add(transform.name)
        self.metrics.quarantined.labels(transform.name).set(1)
        if self.alerts is not None:
            self.alerts.raise_alert(
                "quarantined",
                transform.name,
                f"transform {transform.name} (version {transform.version}) is quarantined:"
                f" it hit its limits on {STRIKES} events in a row ({outcome.error}). Fix the"
                " file, then replay its failed deliveries: dodo-transform replay --failed",
            )
        log.error(
            "transform quarantined",
            extra={
                "transform": transform.name,
                "version": transform.version,
                "error": outcome.error,
            },
        )


def next_round(events: Sequence[StoredEvent]) -> list[StoredEvent]:
    """The first round of `events`: at most `EVENTS_PER_ROUND` events and `ROUND_BODY_BYTES`
    of bodies (one event at least, however big)."""
    size = 0
    for count, event in enumerate(events):
        size += len(event.body)
        if count == EVENTS_PER_ROUND or (count and size > ROUND_BODY_BYTES):
            return list(events[:count])
    return list(events)


def _failed(transform: Transform, reason: str) -> NewDelivery:
    """A failed outcome for something that went wrong around the handler, not in it."""
    error = f"{transform.filename}: could not transform this event: {reason}"
    return NewDelivery(transform.name, transform.version, 0, DeliveryStatus.FAILED, error=error)
