"""Lanes: each transform's deliveries to each destination, sent on their own.

A lane is one transform's requests to one destination (an origin, `scheme://host:port`).
It holds the deliveries the pipeline claimed for it and sends them with at most its
policy's `concurrency` requests in flight, at most `rate` requests a second, and Segment
calls gathered into batches. Each group's results are handed on (to be stored) as soon as
that group is done, whatever the other lanes are doing: a destination that is slow,
stalls or fails holds up its own lane and no other.

Each lane has a circuit breaker (`breaker.py`): paused, it sends one probe at a time and
gives back the deliveries it held but had not sent, which wait in the store without
spending their attempts.

How much a lane may be given is `room()`: what it can have in flight, less what it
holds. The pipeline claims no more than that, so a stalled destination's backlog stays in
the store, not in memory, and every lane is offered work at every claim (fairness
between transforms and destinations comes from the claim, one round at a time).

A lane holds each delivery once, under the claim it was last given it with: one claimed
again while still held (its lease ran out while the worker was busy) is not sent again,
and its result is stored under the newer claim.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from dodo_transform.metrics import PipelineMetrics
from dodo_transform.outbound.breaker import Breaker, Change
from dodo_transform.outbound.dispatcher import Dispatcher, Result
from dodo_transform.outbound.ratelimit import RateLimiter
from dodo_transform.outgoing import segment
from dodo_transform.outgoing.destination import DeliveryPolicy
from dodo_transform.store import Delivery, DeliveryStatus, DeliveryUpdate, Lane

log = logging.getLogger("dodo_transform.outbound")
# A Segment lane with nothing in flight sends what it has at once; while a batch is out, what
# comes meanwhile gathers into the next, sent when full or once its oldest message has waited
# this long (as Segment's SDKs do). So a message alone goes out without waiting, and a burst
# goes out in few requests.
FLUSH_SECONDS = 0.25
# A group that fails for no reason of the destination's (a bug) is tried again after this.
UNEXPECTED_FAILURE_BACKOFF_SECONDS = 5.0

# Called with a lane, the results of one group (or deliveries given back), and what the
# group did to the breaker; returns once they are stored.
Finish = Callable[["LaneSender", list[Result], Change | None], Awaitable[None]]


class LaneSender:
    """Sends one lane's deliveries (see the module docstring)."""

    def __init__(
        self,
        lane: Lane,
        *,
        dispatcher: Dispatcher,
        policy: Callable[[], DeliveryPolicy],
        batch_size: int,
        finish: Finish,
        wake: Callable[[], None],
        metrics: PipelineMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lane = lane
        self._metrics = metrics
        self.breaker = Breaker(clock)
        self._dispatcher = dispatcher
        self._policy = policy
        self._group_size = batch_size if segment.is_segment_url(lane.destination) else 1
        self._finish = finish
        self._wake = wake
        self._clock = clock
        self._waiting: list[Delivery] = []  # claimed, not yet sent
        self._sending: dict[asyncio.Task[None], list[Delivery]] = {}
        self._claims: dict[int, int] = {}  # every delivery held -> the claim it is held under
        self._flush: asyncio.TimerHandle | None = None
        self._pace: RateLimiter | None = None
        self._closed = False

    # --- what the claim asks --------------------------------------------------------------------

    def held(self) -> list[int]:
        """The ids of every delivery claimed for this lane and not yet stored back."""
        return list(self._claims)

    def room(self) -> int:
        """How many more deliveries this lane may be given now."""
        return 0 if self._closed else max(0, self._capacity() - len(self._claims))

    def _capacity(self) -> int:
        allowance = self.breaker.allowance()
        if allowance is not None:  # paused: one probe at a time, when it is due
            return allowance
        return self._policy().concurrency * self._group_size

    @property
    def idle(self) -> bool:
        return not self._claims

    # --- sending --------------------------------------------------------------------------------

    def take(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """Deliveries claimed for this lane: send them as its limits allow. Those it cannot
        take now (it paused since the claim asked) are returned, for the caller to release.
        One it holds already keeps its place, now under the newer claim."""
        refused = []
        for delivery in deliveries:
            if delivery.id in self._claims:
                self._claims[delivery.id] = delivery.claim
            elif self._closed or len(self._claims) >= self._capacity():
                refused.append(delivery)
            else:
                self._claims[delivery.id] = delivery.claim
                self._waiting.append(delivery)
        self._pump()
        return refused

    def updates(self, results: Sequence[Result]) -> list[DeliveryUpdate]:
        """The results as stored: each under the claim its delivery is held under now."""
        return [result.update(self._held_claim(result.delivery)) for result in results]

    def _held_claim(self, delivery: Delivery) -> int:
        """The claim the lane holds `delivery` under now (a newer one if it was re-claimed
        while out), else the claim it came with."""
        return self._claims.get(delivery.id, delivery.claim)

    def _pump(self) -> None:
        """Start sending groups while the lane has slots free."""
        if self._flush is not None:
            self._flush.cancel()  # it is this call's to decide again
            self._flush = None
        concurrency = self._policy().concurrency
        while self._waiting and len(self._sending) < concurrency and not self._closed:
            wait = self._batch_wait()
            if wait > 0:
                self._flush = asyncio.get_running_loop().call_later(wait, self._pump)
                return
            group = self._waiting[: self._group_size]
            del self._waiting[: self._group_size]
            task = asyncio.create_task(self._send(group), name=f"send {self.lane.destination}")
            self._sending[task] = group

    def _batch_wait(self) -> float:
        """Seconds to wait for a fuller batch (Segment lanes); 0: send now."""
        if self._group_size == 1 or len(self._waiting) >= self._group_size or not self._sending:
            return 0.0
        oldest = min(max(d.created_at, d.next_attempt_at) for d in self._waiting)
        return max(0.0, oldest + FLUSH_SECONDS - self._clock())

    async def _send(self, group: list[Delivery]) -> None:
        """Send one group and hand on its results; never raises (a lane never dies of one
        group). Paused by it, the lane gives back what waits, unsent."""
        unsent: list[Delivery] = []
        try:
            results, change = await self._attempt(group)
            if change is Change.PAUSED:
                unsent, self._waiting = self._waiting, []
            await self._finish(self, results + given_back(unsent), change)
        except Exception as error:  # not stored: the caller released what it could
            log.warning("results to %s not stored: %s", self.lane.destination, error)
        finally:
            self._sending.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
            for delivery in [*group, *unsent]:
                self._claims.pop(delivery.id, None)
            self._pump()
            self._wake()

    async def _attempt(self, group: list[Delivery]) -> tuple[list[Result], Change | None]:
        """The group's results, and what they did to the breaker."""
        started = self._clock()
        try:
            policy = self._policy()
            await self._paced(policy)
            if self._closed:  # stopping while it waited for its pace: not sent
                return given_back(group), None
            with self._metrics.timed("send"):
                results = await self._dispatcher.dispatch(group, policy)
        except Exception:
            log.exception("sending to %s failed unexpectedly", self.lane.destination)
            return given_back(group, self._clock() + UNEXPECTED_FAILURE_BACKOFF_SECONDS), None
        return results, self._count(results, started)

    async def _paced(self, policy: DeliveryPolicy) -> None:
        """Wait for the lane's own `rate`, if it has one."""
        if policy.rate is None:
            self._pace = None
            return
        if self._pace is None or self._pace.rate != policy.rate:
            self._pace = RateLimiter(policy.rate, burst=1.0)
        await self._pace.acquire(self.lane.destination)

    def _count(self, results: list[Result], started: float) -> Change | None:
        """Tell the breaker how the group's attempt went (one attempt for a group)."""
        tried = [r for r in results if r.attempt is not None]
        if not tried:
            return None
        failed = [r for r in tried if r.destination_failed]
        if len(failed) < len(tried):
            return self.breaker.succeeded()
        return self.breaker.failed(failed[0].error, started)

    # --- stopping -------------------------------------------------------------------------------

    def close(self) -> list[int]:
        """Send nothing more; the ids held but not being sent (to give back)."""
        self._closed = True
        if self._flush is not None:
            self._flush.cancel()
        waiting, self._waiting = self._waiting, []
        for delivery in waiting:
            self._claims.pop(delivery.id, None)
        return [delivery.id for delivery in waiting]

    def in_flight(self) -> list[asyncio.Task[None]]:
        return list(self._sending)


def given_back(deliveries: Sequence[Delivery], due: float | None = None) -> list[Result]:
    """Results that return deliveries to the store unsent: still pending, due as before (or
    at `due`), no attempt spent."""
    return [
        Result(d, DeliveryStatus.PENDING, next_attempt_at=due or d.next_attempt_at)
        for d in deliveries
    ]
