"""Async handlers: a handler returning a promise or a thenable is awaited, its promise jobs run
inside the event's limits, and nothing it queues reaches the next event."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from dodo_transform.limits import Limits
from dodo_transform.transforms.engine import Outcome, OutcomeKind, Transform
from dodo_transform.transforms.event import Event
from tests.conftest import event_from

FAST = Limits(time_seconds=0.5, memory_bytes=16 * 1024 * 1024, stack_bytes=256 * 1024)
MARK = (
    "\nfunction mark(w, seen) { w.url = 'https://api.segment.io/v1/track';"
    " w.payload = {userId: 'u', event: 'Probe Seen', properties: {seen: seen}}; return w; }"
)
NEVER_SETTLED = "the handler's promise never settled: no timers or network here"


def make(source: str, limits: Limits = FAST) -> Transform:
    return Transform(name="t", source=source + MARK, filename="transforms/t.js", limits=limits)


def seen(outcome: Outcome) -> Any:
    assert outcome.kind is OutcomeKind.DELIVER, outcome.error
    return outcome.requests[0].payload["properties"]["seen"]


def typed(event_type: str) -> Event:
    return Event(event_type, json.dumps({"type": event_type, "data": {}}), "msg_1")


@pytest.mark.parametrize(
    "source",
    [
        "async function handler(w) { const id = await Promise.resolve('cus_1');"
        " await null; return mark(w, id); }",
        "const handler = async (w) => mark(w, await new Promise((ok) => ok('cus_1')));",
        "function handler(w) { return Promise.resolve(w).then((v) => mark(v, 'cus_1')); }",
        "function handler(w) { return {then(resolve) { resolve(mark(w, 'cus_1')); }}; }",
        "async function handler(w) { const later = async () => { await null; return 'cus_1'; };"
        " return mark(w, await later()); }",
    ],
)
def test_a_promise_or_thenable_is_awaited(source: str, payment: dict[str, Any]) -> None:
    assert seen(make(source).run(event_from(payment))) == "cus_1"


def test_an_awaited_array_fans_out(payment: dict[str, Any]) -> None:
    outcome = make(
        "async function handler(w) { await null; return [mark({...w}, 1), mark({...w}, 2)]; }"
    ).run(event_from(payment))
    assert [request.payload["properties"]["seen"] for request in outcome.requests] == [1, 2]


def test_console_lines_after_an_await_are_the_events(payment: dict[str, Any]) -> None:
    outcome = make(
        "async function handler(w) { console.log('before'); await null;"
        " console.log('after'); return mark(w, 1); }"
    ).run(event_from(payment))
    assert outcome.logs == (("log", "before"), ("log", "after"))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "async function handler(w) {\n  await null;\n  throw new Error('no customer');\n}",
            "transforms/t.js:3:13 Error: no customer",
        ),
        (
            "function handler(w) {\n  return Promise.reject(new TypeError('bad amount'));\n}",
            "transforms/t.js:2:29 TypeError: bad amount",
        ),
        (
            "async function handler(w) {\n  await null;\n  return w.payload.nope.deeper;\n}",
            "transforms/t.js:3:10 TypeError: cannot read property 'deeper' of undefined",
        ),
        (
            "function handler(w) { return {then(_, reject) { reject('plain'); }}; }",
            "transforms/t.js: uncaught exception: plain",
        ),
    ],
)
def test_a_rejection_is_the_handlers_error_at_its_line(
    source: str, expected: str, payment: dict[str, Any]
) -> None:
    outcome = make(source).run(event_from(payment))
    assert (outcome.kind, outcome.error, outcome.hit_limit) == (OutcomeKind.ERROR, expected, False)


@pytest.mark.parametrize(
    "source",
    [
        "function handler(w) { return new Promise(() => {}); }",
        "async function handler(w) { await new Promise(() => {}); return w; }",
        "function handler(w) { return {then() {}}; }",
    ],
)
def test_a_promise_that_never_settles_is_an_error_that_says_so(
    source: str, payment: dict[str, Any]
) -> None:
    outcome = make(source).run(event_from(payment))
    assert outcome.kind is OutcomeKind.ERROR and not outcome.hit_limit
    assert outcome.error is not None and outcome.error.startswith(
        f"transforms/t.js: {NEVER_SETTLED}"
    )


@pytest.mark.parametrize(
    "source",
    [
        "async function handler(w) { while (true) await null; }",
        "async function handler(w) { await null; while (true) {} }",
        "function handler(w) { function spin() { Promise.resolve().then(spin); } spin();"
        " return mark(w, 1); }",
    ],
)
def test_promise_jobs_count_against_the_time_limit(source: str, payment: dict[str, Any]) -> None:
    """The binding restarts its clock for every job; the handler's limit covers them all.
    The limit is on CPU time (the binding's clock), so that is what is measured: on a busy
    machine the wall clock runs on while other processes have the CPU."""
    started = time.process_time()
    outcome = make(source).run(event_from(payment))
    assert outcome.kind is OutcomeKind.ERROR and outcome.hit_limit
    assert outcome.error is not None and "time limit of 0.5 s exceeded" in outcome.error
    assert time.process_time() - started < 3 * FAST.time_seconds


def test_promise_jobs_count_against_the_memory_limit(payment: dict[str, Any]) -> None:
    outcome = make(
        "async function handler(w) { const a = [];"
        " while (true) { a.push('x'.repeat(1000) + a.length); await null; } }"
    ).run(event_from(payment))
    assert outcome.hit_limit and "memory limit of 16 MB exceeded" in (outcome.error or "")


def test_jobs_a_plain_handler_leaves_run_in_its_own_event(payment: dict[str, Any]) -> None:
    transform = make(
        "function handler(w) {\n"
        "  const before = typeof late;\n"
        "  Promise.resolve().then(() => { globalThis.late = 1; console.log('job ran'); });\n"
        "  return mark(w, before);\n"
        "}"
    )
    outcomes = [transform.run(event_from(payment)) for _ in range(2)]
    assert [seen(outcome) for outcome in outcomes] == ["undefined", "undefined"]
    assert [outcome.logs for outcome in outcomes] == [(("log", "job ran"),)] * 2


def test_a_finalizer_registered_in_one_event_never_runs_in_the_next() -> None:
    """Deleting event 1's globals frees its target while its registry is still alive: the
    engine queues the cleanup callback then, and event 2 would run it."""
    transform = make(
        "async function handler(w) {\n"
        "  if (w.eventType === 'register') {\n"
        "    globalThis.target = {};\n"
        "    globalThis.registry = new FinalizationRegistry(() => {\n"
        "      globalThis.leak = 1; console.log('cleanup from an earlier event');\n"
        "    });\n"
        "    registry.register(target, 'held');\n"
        "    return mark(w, 'registered');\n"
        "  }\n"
        "  await null;\n"
        "  return mark(w, typeof leak);\n"
        "}"
    )
    assert seen(transform.run(typed("register"))) == "registered"
    probe = transform.run(typed("probe"))
    assert (seen(probe), probe.logs) == ("undefined", ())


def test_a_finalizer_still_runs_within_its_own_event() -> None:
    transform = make(
        "async function handler(w) {\n"
        "  let ran = false;\n"
        "  const registry = new FinalizationRegistry((held) => { ran = held; });\n"
        "  registry.register({}, 'held');\n"
        "  await null; await null;\n"
        "  return mark(w, [ran, registry instanceof FinalizationRegistry,"
        " typeof registry.unregister]);\n"
        "}"
    )
    assert seen(transform.run(typed("a"))) == ["held", True, "function"]


def test_jobs_the_top_level_queues_while_loading_stay_out_of_the_first_event() -> None:
    """The top level runs at load (to find the handler) and again for every event: each run's
    jobs belong to that run, so the first event prints what every other event prints."""
    transform = make(
        "Promise.resolve().then(() => console.log('from the top level'));\n"
        "function handler(w) { return mark(w, 1); }"
    )
    logs = [transform.run(typed("a")).logs for _ in range(2)]
    assert logs == [(("log", "from the top level"),)] * 2
