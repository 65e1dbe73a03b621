"""Handler files run as V8 runs them: a sloppy script unless the file says "use strict", with
globalThis writable for the rest of the event and pristine for the next.

Each test runs several events through one `Transform`, so through one QuickJS runtime: what an
event leaves behind would show in the next.
"""

from __future__ import annotations

from typing import Any

import pytest

from dodo_transform.errors import HandlerError
from dodo_transform.limits import Limits
from dodo_transform.transforms.engine import Outcome, OutcomeKind, Transform
from tests.conftest import event_from

FAST = Limits(time_seconds=0.5, memory_bytes=16 * 1024 * 1024, stack_bytes=256 * 1024)
MARK = (
    "\nfunction mark(w, seen) { w.url = 'https://api.segment.io/v1/track';"
    " w.payload = {userId: 'u', event: 'Probe Seen', properties: {seen: seen}}; return w; }"
)


def make(source: str) -> Transform:
    return Transform(name="t", source=source + MARK, filename="transforms/t.js", limits=FAST)


def seen(outcome: Outcome) -> Any:
    assert outcome.kind is OutcomeKind.DELIVER, outcome.error
    return outcome.requests[0].payload["properties"]["seen"]


def runtime(transform: Transform) -> Any:
    return transform._sandbox()._context


def test_a_sloppy_file_assigns_undeclared_names_and_globals_within_its_event(
    payment: dict[str, Any],
) -> None:
    transform = make(
        "function handler(w) {\n"
        "  total = (typeof total === 'number' ? total : 0) + w.payload.data.total_amount;\n"
        "  globalThis.counter = (globalThis.counter || 0) + 1;\n"
        "  this.viaThis = 'set';\n"
        "  return mark(w, [total, counter, viaThis, Object.hasOwn(globalThis, 'total')]);\n"
        "}"
    )
    first = runtime(transform)
    results = [seen(transform.run(event_from(payment))) for _ in range(4)]
    assert results == [[2499, 1, "set", True]] * 4
    assert runtime(transform) is first, "one runtime served every event"


def test_the_top_level_runs_with_the_global_as_this_as_a_script_does(
    payment: dict[str, Any],
) -> None:
    transform = make(
        "var atTop = this === globalThis;\n"
        "counted = (typeof counted === 'number' ? counted : 0) + 1;\n"
        "function handler(w) { return mark(w, [atTop, counted]); }"
    )
    assert [seen(transform.run(event_from(payment))) for _ in range(3)] == [[True, 1]] * 3


def test_a_strict_file_keeps_strict_mode_and_may_still_write_globalthis(
    payment: dict[str, Any],
) -> None:
    strict = make(
        "// a comment may come before the directive\n"
        "'use strict';\n"
        "function handler(w) {\n"
        "  globalThis.counter = (globalThis.counter || 0) + 1;\n"
        "  if (w.eventType === 'payment.failed') undeclared = 1;\n"
        "  return mark(w, [counter, this === undefined]);\n"
        "}"
    )
    assert [seen(strict.run(event_from(payment))) for _ in range(2)] == [[1, True]] * 2
    payment["type"] = "payment.failed"
    failed = strict.run(event_from(payment))
    assert failed.error == "transforms/t.js:5:41 ReferenceError: undeclared is not defined"


WRITES = [
    "JSON.stringify = function () { return 'x'; }",
    "Math = null",
    "Object.prototype.toString = function () { return 'mine'; }",
    "Error.stackTraceLimit = 0",
    "Array.prototype.extra = 1",
]
WRITES_TO_BUILT_INS = "; ".join(WRITES) + ";"


def test_writes_to_frozen_built_ins_are_ignored_in_sloppy_code(payment: dict[str, Any]) -> None:
    transform = make(
        f"function handler(w) {{ {WRITES_TO_BUILT_INS}"
        " return mark(w, [JSON.stringify({a: 1}), typeof Math, String({}),"
        " Error.stackTraceLimit, [].extra === undefined]); }"
    )
    expected = ['{"a":1}', "object", "[object Object]", 10, True]
    assert [seen(transform.run(event_from(payment))) for _ in range(2)] == [expected] * 2


@pytest.mark.parametrize("write", WRITES)
def test_writes_to_frozen_built_ins_throw_under_use_strict(
    write: str, payment: dict[str, Any]
) -> None:
    outcome = make(f'"use strict";\nfunction handler(w) {{\n  {write};\n}}').run(
        event_from(payment)
    )
    assert outcome.kind is OutcomeKind.ERROR and not outcome.hit_limit
    assert outcome.error is not None and outcome.error.startswith("transforms/t.js:3:")
    assert "TypeError" in outcome.error


# Changes to the global itself that deleting what was added cannot undo (or that need more
# than deleting): the next event still starts from a pristine global.
LASTING_CHANGES = {
    "non-configurable property": "Object.defineProperty(globalThis, 'kept', {value: 1});",
    "non-extensible global": "globalThis.kept = 1; Object.preventExtensions(globalThis);",
    "frozen global": "globalThis.kept = 1; Object.freeze(globalThis);",
    "replaced prototype": "Object.setPrototypeOf(globalThis, {kept: 1});",
    "accessor": "Object.defineProperty(globalThis, 'kept', {get() { return 1; },"
    " configurable: true});",
    "symbol key": "globalThis[Symbol.for('kept')] = 1;",
}


@pytest.mark.parametrize("change", sorted(LASTING_CHANGES))
def test_no_change_to_the_global_is_seen_by_the_next_event(
    change: str, payment: dict[str, Any]
) -> None:
    transform = make(
        "function handler(w) {\n"
        "  const before = [typeof kept, Object.isExtensible(globalThis),"
        " Symbol.for('kept') in globalThis];\n"
        f"  {LASTING_CHANGES[change]}\n"
        "  globalThis.added = 1;\n"
        "  return mark(w, before);\n"
        "}"
    )
    assert [seen(transform.run(event_from(payment))) for _ in range(3)] == [
        ["undefined", True, False]
    ] * 3


def test_a_later_event_assigns_the_same_name_afresh(payment: dict[str, Any]) -> None:
    """What one event added is gone, not just hidden: the next may add it again, as anything."""
    transform = make(
        "function handler(w) {\n"
        "  const before = typeof shared;\n"
        "  shared = w.eventType === 'payment.succeeded' ? 'text' : 42;\n"
        "  return mark(w, [before, typeof shared]);\n"
        "}"
    )
    assert seen(transform.run(event_from(payment))) == ["undefined", "string"]
    payment["type"] = "payment.failed"
    assert seen(transform.run(event_from(payment))) == ["undefined", "number"]


def test_a_sloppy_file_that_ends_too_soon_is_reported_where_it_ends() -> None:
    """Compiled alone to find its end, it is compiled sloppy too: `with` is no error there."""
    source = "function handler(w) {\n  with (w) { url = 'https://a.example/'; }\n  return w;\n"
    with pytest.raises(HandlerError) as caught:
        Transform(name="t", source=source, filename="transforms/t.js", limits=FAST)
    assert str(caught.value).startswith(
        "transforms/t.js:3:12 SyntaxError: unexpected end of file: a `{` is not closed"
    )
