"""The delivery stage: due deliveries -> their lanes -> stored results.

A step looks at the lanes with pending deliveries (one transform's requests to one
destination: `store.Lane`), asks each how much room it has, and claims that many due
deliveries of each under one new claim. Every lane is offered work at every step, so one
transform's backlog never holds another's fresh messages back by more than a step, and
the lanes send on their own (`outbound/lanes.py`): a step never waits for a send, so a
slow or stalled destination cannot stop the loop, nor any other destination.

Each group's results are stored as soon as the group is done (`ResultWriter` gathers a
few milliseconds' worth into one transaction): `delivered`, `pending` for a retry, `dead`,
`blocked` or `dry_run`. A result is stored only under the claim it was made under: one
whose claim ran out (this worker was paused past its lease and the delivery was claimed
again) is dropped and logged, never laid over the newer claim's work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from dodo_transform import logs
from dodo_transform.alerts import Alerter
from dodo_transform.errors import StorageError
from dodo_transform.metrics import PipelineMetrics
from dodo_transform.outbound.breaker import Change
from dodo_transform.outbound.dispatcher import Dispatcher, Result
from dodo_transform.outbound.lanes import LaneSender
from dodo_transform.outgoing import segment
from dodo_transform.outgoing.destination import DeliveryPolicy, PausedDestination
from dodo_transform.pipeline.results import ResultWriter
from dodo_transform.pipeline.transform_stage import StoreCall
from dodo_transform.store import Attempt, Delivery, DeliveryStatus, DeliveryWork, Lane
from dodo_transform.tracing import NO_TRACING, Tracing

log = logging.getLogger("dodo_transform.pipeline")
CLAIM_LIMIT = 2000  # deliveries per lane per step


class DeliveryStage:
    def __init__(
        self,
        *,
        store: DeliveryWork,
        dispatcher: Dispatcher,
        metrics: PipelineMetrics,
        store_call: StoreCall,
        lease_seconds: float,
        batch_size: int,
        policy_for: Callable[[str], DeliveryPolicy] = lambda transform: DeliveryPolicy(),
        wake: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
        alerts: Alerter | None = None,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        """`policy_for(transform)`: how that transform's requests are delivered; `wake`: a
        lane has room again (run a step soon)."""
        self.store = store
        self.dispatcher = dispatcher
        self.metrics = metrics
        self._store = store_call
        self._lease = lease_seconds
        self._batch_size = batch_size
        self._policy_for = policy_for
        self._wake = wake
        self._clock = clock
        self._lanes: dict[Lane, LaneSender] = {}
        self._waiting: dict[Lane, int] = {}  # of paused lanes
        self._backlog: set[Lane] = set()  # lanes with due deliveries in the store, maybe
        self._writer = ResultWriter(store_call, store.record_results, metrics)
        self.alerts = alerts
        self.tracing = tracing

    async def step(self) -> bool:
        """Claim what the lanes have room for and hand it to them; False when none was."""
        with self.metrics.timed("claim deliveries"):
            lanes = await self._store(self.store.pending_lanes)
            self._forget_idle(set(lanes))
            self._backlog &= set(lanes)  # nothing pending in the store: no backlog
            rooms = {lane: min(self._sender(lane).room(), CLAIM_LIMIT) for lane in lanes}
            if not any(rooms.values()):
                return False
            due: list[Delivery] = await self._store(self.store.claim_deliveries, rooms, self._lease)
        by_lane = _by_lane(due)
        for lane, room in rooms.items():
            # Claimed all it had room for: more may wait, and they go before what is handed.
            if room and len(by_lane.get(lane, ())) >= room:
                self._backlog.add(lane)
            elif room:
                self._backlog.discard(lane)
        await self._take(by_lane)
        return bool(due)

    def room_for(self, lane: Lane) -> int:
        """How many new deliveries `lane` takes now, handed by the transform stage (see
        `hand_off.py`): none while it has a backlog in the store, which goes first."""
        room = 0 if lane in self._backlog else min(self._sender(lane).room(), CLAIM_LIMIT)
        if not room:  # what it cannot take is stored unclaimed: a backlog from now on
            self._backlog.add(lane)
        return room

    async def receive(self, deliveries: list[Delivery]) -> None:
        """Send deliveries claimed for this process as they were stored."""
        await self._take(_by_lane(deliveries))

    async def _take(self, by_lane: dict[Lane, list[Delivery]]) -> None:
        refused = [d for lane, group in by_lane.items() for d in self._sender(lane).take(group)]
        if refused:  # a lane paused since it gave its room: back to the store, unsent
            await self._release([delivery.id for delivery in refused])

    def held(self) -> list[int]:
        """The ids of every delivery claimed and not yet stored back."""
        return [delivery_id for sender in self._lanes.values() for delivery_id in sender.held()]

    def paused(self) -> list[PausedDestination]:
        """The lanes paused by their circuit breaker now."""
        return [
            PausedDestination(
                lane.transform,
                lane.destination,
                sender.breaker.paused_since or 0.0,
                sender.breaker.last_error,
                self._waiting.get(lane, 0),
                sender.breaker.probe_at,
            )
            for lane, sender in sorted(self._lanes.items())
            if sender.breaker.paused
        ]

    async def drain(self, timeout: float) -> list[int]:
        """Stop sending: give back what waits unsent, let the sends in flight finish for
        `timeout` seconds (their results stored), and return the ids still held (to
        release)."""
        given = [delivery_id for sender in self._lanes.values() for delivery_id in sender.close()]
        tasks = [task for sender in self._lanes.values() for task in sender.in_flight()]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        still_held = self.held()  # before cancelling: a cancelled send lets go of its own
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._writer.close()
        return given + still_held

    # --- lanes ----------------------------------------------------------------------------------

    def _sender(self, lane: Lane) -> LaneSender:
        sender = self._lanes.get(lane)
        if sender is None:
            sender = self._lanes[lane] = LaneSender(
                lane,
                dispatcher=self.dispatcher,
                policy=lambda: self._policy_for(lane.transform),
                batch_size=self._batch_size,
                finish=self._finish,
                wake=self._wake,
                metrics=self.metrics,
                clock=self._clock,
            )
        return sender

    def _forget_idle(self, pending: set[Lane]) -> None:
        """Let go of lanes with nothing to do (a paused one is kept: its breaker decides)."""
        for lane in [lane for lane in self._lanes if lane not in pending]:
            sender = self._lanes[lane]
            if sender.idle and not sender.breaker.paused:
                del self._lanes[lane]

    async def _finish(
        self, sender: LaneSender, results: list[Result], change: Change | None
    ) -> None:
        """Store a group's results, then count and log them. If they cannot be stored, the
        deliveries are released (claimable again at once) and the error raised."""
        try:
            with self.metrics.timed("record results (waited)"):
                stale = await self._writer.write(sender.updates(results))
        except Exception:
            await self._release([result.delivery.id for result in results])
            raise
        dropped = {update.delivery_id for update in stale}
        if dropped:
            log.warning(
                "results dropped: the deliveries were claimed again after this worker's claim"
                " ran out (another worker or a later claim has them)",
                extra={"delivery_ids": sorted(dropped), "destination": sender.lane.destination},
            )
        for result in results:
            if result.delivery.id not in dropped:
                self._account(result)
        if change is not None:
            await self._breaker_changed(sender, change)

    async def _release(self, delivery_ids: list[int]) -> None:
        try:
            await self._store(self.store.release, delivery_ids)
        except StorageError as error:  # their leases run out instead
            log.warning("could not release deliveries: %s", error)

    async def _breaker_changed(self, sender: LaneSender, change: Change) -> None:
        lane, breaker = sender.lane, sender.breaker
        fields = {"transform": lane.transform, "destination": lane.destination}
        if change is Change.RESUMED:
            self._waiting.pop(lane, None)
            self.metrics.paused.labels(*lane).set(0)
            log.info("destination resumed: it answered again", extra=fields)
            return
        failures, error = breaker.failures, breaker.last_error
        with contextlib.suppress(StorageError):
            self._waiting[lane] = await self._store(self.store.count_waiting, lane)
        if change is Change.STILL_PAUSED:
            return
        self.metrics.paused.labels(*lane).set(1)
        waiting = self._waiting.get(lane, 0)
        message = (
            f"deliveries of transform {lane.transform} to {lane.destination} are paused after"
            f" {failures} failed attempts in a row (last: {error});"
            f" {waiting} wait, their attempts unspent. It is probed with one request at"
            " growing intervals and resumes at its first answer."
        )
        log.warning("destination paused", extra=fields | {"error": error, "waiting": waiting})
        if self.alerts is not None:
            self.alerts.raise_alert("paused", f"{lane.transform} {lane.destination}", message)

    def _trace(self, delivery: Delivery, status: DeliveryStatus, attempt: Attempt) -> None:
        """The attempt's span, in its webhook's trace."""
        extra: dict[str, Any] = {
            "dodo.transform": delivery.transform,
            "dodo.destination": delivery.destination,
            "dodo.delivery_status": "retrying"
            if status is DeliveryStatus.PENDING
            else status.value,
        }
        if attempt.status_code is not None:
            extra["http.response.status_code"] = attempt.status_code
        if attempt.error:
            extra["error.type"] = attempt.error[:200]
        started = int(attempt.at * 1e9)
        ended = started + int(attempt.duration_ms * 1e6)
        self.tracing.attempted(delivery.webhook_id, delivery.event_type, extra, started, ended)

    def _account(self, result: Result) -> None:
        delivery, status, attempt = result.delivery, result.status, result.attempt
        if status is DeliveryStatus.PENDING and attempt is None:
            return  # given back unsent (paused, stopping, or Segment's 429 pause)
        if attempt is not None and self.tracing.enabled:
            self._trace(delivery, status, attempt)
        if status is DeliveryStatus.DELIVERED:
            self.metrics.delivered.labels(delivery.transform).inc()
            self.metrics.latency.observe(max(0.0, self._clock() - delivery.received_at))
        elif status is DeliveryStatus.PENDING:
            self.metrics.retried.labels(delivery.transform).inc()
        else:
            self.metrics.finished.labels(delivery.transform, status.value).inc()
        fields: dict[str, Any] = {
            "webhook_id": delivery.webhook_id,
            "transform": delivery.transform,
            "delivery_id": delivery.id,
            "destination": delivery.destination,
            "status": "retrying" if status is DeliveryStatus.PENDING else status.value,
        }
        if result.error:
            fields["error"] = result.error
        if attempt is not None:
            fields |= {
                "http_status": attempt.status_code,
                "duration_ms": round(attempt.duration_ms, 1),
            }
        if status is DeliveryStatus.DEAD and self.alerts is not None:
            self.alerts.raise_alert(
                "dead",
                delivery.transform,
                f"deliveries of transform {delivery.transform} are going dead: {result.error}."
                " See `dodo-transform deliveries --status dead`; replay them once fixed.",
            )
        if attempt is not None and attempt.status_code in (401, 403):
            # Every message of this transform will fail the same way: say what to fix.
            fix = _credentials_fix(delivery)
            if self.alerts is not None:
                self.alerts.raise_alert(
                    "credentials",
                    delivery.transform,
                    f"the destination refused transform {delivery.transform}'s credentials"
                    f" (HTTP {attempt.status_code}): {fix}",
                )
            log.error(
                f"the destination refused the credentials of transform {delivery.transform}: {fix}",
                extra=fields,
            )
            return
        if status is DeliveryStatus.DEAD:
            # Retries are over: a person must look (fix, then replay), unlike a retry.
            log.warning("delivery dead", extra=fields)
            return
        logs.info(log, "delivery attempt", **fields)  # a line per message: the fast path


def _by_lane(deliveries: list[Delivery]) -> dict[Lane, list[Delivery]]:
    by_lane: dict[Lane, list[Delivery]] = defaultdict(list)
    for delivery in deliveries:
        by_lane[delivery.lane].append(delivery)
    return by_lane


def _credentials_fix(delivery: Delivery) -> str:
    """What to check when a destination refuses a transform's credentials: Segment's are the
    write key; another destination's are the headers the transform sends."""
    if delivery.request is not None and segment.is_segment_url(delivery.request.url):
        return "check its write key (write_key in transforms.toml, else SEGMENT_WRITE_KEY)"
    return (
        "check the credentials it sends (its headers in transforms.toml, and the environment"
        " variables they name, or the headers its handler sets)"
    )
