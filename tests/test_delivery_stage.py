"""The delivery stage: each destination in its own lane, results stored as they come, a
breaker per lane. A real SQLite store; destinations at the httpx seam, answering as told."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dodo_transform.metrics import PipelineMetrics
from dodo_transform.outbound.breaker import FAILURES_TO_PAUSE
from dodo_transform.outbound.dispatcher import Dispatcher
from dodo_transform.outbound.ratelimit import RateLimiter
from dodo_transform.outbound.sender import Sender
from dodo_transform.outgoing import OutgoingRequest
from dodo_transform.outgoing.destination import DeliveryPolicy
from dodo_transform.pipeline import hand_off
from dodo_transform.pipeline.delivery_stage import DeliveryStage
from dodo_transform.store import DeliveryStatus, Lane, NewDelivery, NewEvent, Store
from dodo_transform.store.records import new_claim
from dodo_transform.store.sqlite import MemoryStore

Rule = Callable[[httpx.Request], Awaitable[httpx.Response]]
SEGMENT = "https://api.segment.io/v1/track"


async def answer_ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200)


class Destinations:
    """Every destination at the httpx seam: each host answers by its own rule."""

    def __init__(self) -> None:
        self.rules: dict[str, Rule] = {}
        self.seen: list[str] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request.url.host)
        return await self.rules.get(request.url.host, answer_ok)(request)


class Clock:
    """Real time, which a test may move ahead (for the breaker's probes)."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = MemoryStore()
    yield opened
    opened.close()


def stage_for(
    store: Store,
    destinations: Destinations,
    policy: DeliveryPolicy | None = None,
    clock: Callable[[], float] = time.time,
    lease_seconds: float = 60,
) -> DeliveryStage:
    sender = Sender(
        segment_base_url="https://api.segment.io",
        allowed_hosts=frozenset({"stalled.example", "slow.example", "failing.example"}),
        transport=httpx.MockTransport(destinations),
    )
    dispatcher = Dispatcher(
        sender,
        write_key_for=lambda transform: "wk",
        limiter=RateLimiter(1000, burst=1000),
        dry_run=False,
        retry_base_seconds=0.05,
    )

    async def store_call(method: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(method, *args)

    return DeliveryStage(
        store=store,
        dispatcher=dispatcher,
        metrics=PipelineMetrics(),
        store_call=store_call,
        lease_seconds=lease_seconds,
        batch_size=250,
        policy_for=lambda transform: policy or DeliveryPolicy(timeout=30),
        clock=clock,
    )


def queue(store: Store, transform: str, url: str, count: int) -> None:
    """`count` pending deliveries of `transform` to `url`, one event each."""
    start = len(store.list_events(100_000))
    for n in range(count):
        ((event_id, _),) = store.add_events([NewEvent(f"msg_{transform}_{start + n}", "a", b"{}")])
        request = OutgoingRequest("POST", url, {}, {"userId": "u", "event": "Payment Completed"})
        store.record_outcomes(
            {event_id: [NewDelivery(transform, "v1", 0, DeliveryStatus.PENDING, request=request)]}
        )


def statuses(store: Store, transform: str) -> list[str]:
    return [d.status.value for d in store.list_deliveries(limit=10_000, transform=transform)]


async def step_until(stage: DeliveryStage, done: Callable[[], bool], timeout: float) -> float:
    """Run steps until `done()`; the seconds it took (AssertionError after `timeout`)."""
    started = time.monotonic()
    while not await asyncio.to_thread(done):
        assert time.monotonic() - started < timeout, "not reached in time"
        await stage.step()
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def stalled(request: httpx.Request) -> httpx.Response:
    await asyncio.Event().wait()  # never answers
    raise AssertionError("unreachable")


def test_a_stalled_destination_holds_up_no_other(store: Store) -> None:
    destinations = Destinations()
    destinations.rules["stalled.example"] = stalled
    queue(store, "slack", "https://stalled.example/hook", 40)
    queue(store, "track", SEGMENT, 5)
    stage = stage_for(store, destinations, DeliveryPolicy(timeout=30, concurrency=4))

    async def run() -> None:
        took = await step_until(stage, lambda: statuses(store, "track") == ["delivered"] * 5, 5)
        assert took < 2
        waiting = store.list_deliveries(limit=100, transform="slack")
        assert {d.status for d in waiting} == {DeliveryStatus.PENDING}
        assert sum(d.attempts for d in waiting) == 0
        # Segment's five are let go a moment after they are stored as delivered.
        slacks = {d.id for d in waiting}
        await step_until(stage, lambda: set(stage.held()) <= slacks, 5)
        held = stage.held()
        assert len(held) == 4  # its concurrency, not its backlog, is claimed
        assert sorted(await stage.drain(0.1)) == sorted(held)

    asyncio.run(run())


def test_each_group_is_stored_as_it_finishes(store: Store) -> None:
    destinations = Destinations()
    answer = asyncio.Event()  # the slow destination answers when the test says so

    async def slow(request: httpx.Request) -> httpx.Response:
        await answer.wait()
        return httpx.Response(200)

    destinations.rules["slow.example"] = slow
    queue(store, "crm", "https://slow.example/contacts", 1)
    queue(store, "track", SEGMENT, 1)
    stage = stage_for(store, destinations)

    async def run() -> None:
        await step_until(stage, lambda: statuses(store, "track") == ["delivered"], 2)
        assert statuses(store, "crm") == ["pending"]
        answer.set()
        await step_until(stage, lambda: statuses(store, "crm") == ["delivered"], 5)
        await stage.drain(1)

    asyncio.run(run())


def test_a_transforms_backlog_does_not_hold_back_another_transforms_fresh_message(
    store: Store,
) -> None:
    """Two transforms to one slow destination: each is a lane of its own."""
    destinations = Destinations()

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.2)
        return httpx.Response(200)

    destinations.rules["slow.example"] = slow
    queue(store, "bulk", "https://slow.example/in", 300)
    queue(store, "fresh", "https://slow.example/in", 1)
    stage = stage_for(store, destinations, DeliveryPolicy(concurrency=2))

    async def run() -> None:
        took = await step_until(stage, lambda: statuses(store, "fresh") == ["delivered"], 3)
        assert took < 1
        assert statuses(store, "bulk").count("delivered") < 20
        await stage.drain(0.1)

    asyncio.run(run())


def test_a_failing_destination_is_paused_probed_and_resumed(store: Store) -> None:
    destinations = Destinations()
    failing = True

    async def flaky(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503 if failing else 200)

    destinations.rules["failing.example"] = flaky
    queue(store, "slack", "https://failing.example/hook", 30)
    clock = Clock()
    stage = stage_for(store, destinations, DeliveryPolicy(concurrency=1), clock=clock)

    async def run() -> None:
        nonlocal failing
        await step_until(stage, lambda: bool(stage.paused()), 5)
        (paused,) = stage.paused()
        assert (paused.transform, paused.destination) == ("slack", "https://failing.example")
        assert paused.last_error is not None and paused.last_error.startswith("HTTP 503")
        assert paused.waiting == 30
        tried = len(destinations.seen)
        assert tried == FAILURES_TO_PAUSE
        # The lane lets the last failed attempt go a moment after it is stored.
        await step_until(stage, lambda: stage.held() == [], 5)
        for _ in range(10):  # paused: nothing is claimed, no attempt is spent
            await stage.step()
            await asyncio.sleep(0.02)
        assert len(destinations.seen) == tried and stage.held() == []
        failing = False
        clock.ahead = 3600  # the probe is due
        await step_until(stage, lambda: statuses(store, "slack") == ["delivered"] * 30, 10)
        assert stage.paused() == []
        assert len(destinations.seen) == tried + 30
        await stage.drain(1)

    asyncio.run(run())


def test_a_delivery_claimed_again_while_held_is_sent_once_and_stored_under_the_new_claim(
    store: Store,
) -> None:
    """Its lease runs out while its send is still out (nothing renews it here): the next
    step claims it again, and the lane keeps the one send, recording under the new claim."""
    destinations = Destinations()
    answer = asyncio.Event()

    async def late(request: httpx.Request) -> httpx.Response:
        await answer.wait()
        return httpx.Response(200)

    destinations.rules["slow.example"] = late
    queue(store, "crm", "https://slow.example/in", 1)
    stage = stage_for(store, destinations, lease_seconds=0.2)

    async def run() -> None:
        await stage.step()
        for _ in range(5):
            await asyncio.sleep(0.25)
            await stage.step()  # claims it again each time its lease runs out
        assert destinations.seen == ["slow.example"] and len(stage.held()) == 1
        answer.set()
        await step_until(stage, lambda: statuses(store, "crm") == ["delivered"], 5)
        await stage.drain(1)

    asyncio.run(run())
    assert len(destinations.seen) == 1


def test_a_lane_that_paused_after_giving_its_room_takes_no_more_than_its_probe(
    store: Store,
) -> None:
    destinations = Destinations()

    async def failing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    destinations.rules["failing.example"] = failing
    queue(store, "slack", "https://failing.example/hook", 10)
    stage = stage_for(store, destinations)
    due = store.claim_deliveries({Lane("slack", "https://failing.example"): 10}, 60)
    sender = stage._sender(Lane("slack", "https://failing.example"))
    for _ in range(FAILURES_TO_PAUSE):
        sender.breaker.failed("HTTP 503")
    assert [d.id for d in sender.take(due)] == [d.id for d in due]  # paused: none taken


def test_a_round_handed_to_its_lanes_is_sent_without_being_claimed_again(store: Store) -> None:
    destinations = Destinations()
    stage = stage_for(store, destinations, DeliveryPolicy(timeout=30, concurrency=2))
    ((event_id, _),) = store.add_events([NewEvent("msg_handed", "a", b"{}")])
    (event,) = store.claim_events(10, 60)
    request = OutgoingRequest("POST", "https://slow.example/hook", {}, {"n": 1})
    outcomes = {event_id: [NewDelivery("slack", "v1", 0, DeliveryStatus.PENDING, request=request)]}

    async def run() -> None:
        handing, lanes = hand_off.plan(outcomes, stage, new_claim(), time.time() + 60)
        assert set(lanes.values()) == {Lane("slack", "https://slow.example")}
        recorded = store.record_outcomes(outcomes, {event_id: event.claim}, handing)
        assert store.claim_deliveries({Lane("slack", "https://slow.example"): 10}, 60) == []
        handed = hand_off.deliveries(
            recorded.handed, lanes, outcomes, [event], handing.claim, time.time()
        )
        await stage.receive(handed)
        await step_until(stage, lambda: statuses(store, "slack") == ["delivered"], 5)
        await stage.drain(1)

    asyncio.run(run())
    assert destinations.seen == ["slow.example"]


def test_a_lane_with_a_backlog_in_the_store_is_handed_nothing_until_it_is_claimed(
    store: Store,
) -> None:
    lane = Lane("slack", "https://slow.example")
    queue(store, "slack", "https://slow.example/hook", 3)
    stage = stage_for(store, Destinations(), DeliveryPolicy(timeout=30, concurrency=2))

    async def run() -> None:
        assert await stage.step()  # claims 2, all it has room for: a third may wait
        while statuses(store, "slack").count("delivered") < 2:
            await asyncio.sleep(0.01)
        assert stage.room_for(lane) == 0  # room again, but the one in the store goes first
        # The lane lets the two go a moment after they are stored as delivered; then the next
        # step claims the last one (fewer than its room).
        while not await stage.step():
            await asyncio.sleep(0.01)
        # Stored as delivered a moment before the lane lets it go (and has room for two again).
        while statuses(store, "slack").count("delivered") < 3 or stage.room_for(lane) < 2:
            await asyncio.sleep(0.01)
        assert stage.room_for(lane) == 2
        await stage.drain(1)

    asyncio.run(run())


def test_a_dead_delivery_is_logged_as_a_warning(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Retries are over and a person must act: not an INFO line among the attempts."""
    destinations = Destinations()

    async def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "bad field"})

    destinations.rules["failing.example"] = refuse
    queue(store, "hook", "https://failing.example/in", 1)
    stage = stage_for(store, destinations)
    with caplog.at_level("INFO", logger="dodo_transform"):
        asyncio.run(step_until(stage, lambda: statuses(store, "hook") == ["dead"], 10))
    (dead,) = [r for r in caplog.records if getattr(r, "delivery_id", None) is not None]
    assert (dead.levelname, dead.getMessage(), dead.status) == ("WARNING", "delivery dead", "dead")  # type: ignore[attr-defined]
    assert dead.http_status == 400  # type: ignore[attr-defined]
