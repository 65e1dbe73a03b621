"""The sandbox: limits, containment, isolation between events, and a time budget of its own."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from dodo_transform.errors import HandlerError
from dodo_transform.limits import Limits
from dodo_transform.transforms.engine import OutcomeKind, Transform
from tests.conftest import event_from

FAST = Limits(time_seconds=0.3, memory_bytes=16 * 1024 * 1024, stack_bytes=256 * 1024)
HEALTHY = """
function handler(webhook) {
  webhook.url = "https://api.segment.io/v1/track";
  webhook.payload = {userId: "u1", event: "Payment Completed"};
  return webhook;
}
"""


def make(source: str, limits: Limits = FAST) -> Transform:
    return Transform(name="t", source=source, filename="transforms/t.js", limits=limits)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("function handler(w) { while (true) {} }", "time limit of 0.3 s exceeded"),
        (
            "function handler(w) { const a = []; while (true) a.push('x'.repeat(1000) + a.length); }",
            "memory limit of 16 MB exceeded",
        ),
        (
            "function handler(w) { function down(n) { return down(n + 1) + 1; } return down(0); }",
            "stack overflow",
        ),
        (
            "function handler(w) {\n  throw new Error('no customer');\n}",
            "transforms/t.js:2:13 Error: no customer",
        ),
        (
            "function handler(w) {\n  return w.payload.nope.deeper;\n}",
            "transforms/t.js:2:10 TypeError: cannot read property 'deeper' of undefined",
        ),
        (
            "function handler(w) { w.url = 'x'; }",
            "handler returned undefined; return the webhook object",
        ),
        (
            "function handler(w) { return null; }",
            "handler returned null; return the webhook object",
        ),
        ("function handler(w) { return 42; }", "handler returned number"),
        (
            "function handler(w) { require('fs'); return w; }",
            "require is not defined (the sandbox has no network",
        ),
        (
            "function handler(w) { fetch('http://169.254.169.254/'); return w; }",
            "fetch is not defined",
        ),
        ("function handler(w) { setTimeout(() => 1, 1); return w; }", "setTimeout is not defined"),
        (
            "function handler(w) { throw 'plain string'; }",
            "transforms/t.js: uncaught exception: plain string",
        ),
        (  # sloppy files may assign undeclared names (see test_script_mode.py); strict ones not
            '"use strict";\nfunction handler(w) {\n  total = 1;\n  return w;\n}',
            "transforms/t.js:3:3 ReferenceError: total is not defined",
        ),
        # The web platform's own frames are left out: the error is the handler's line.
        (
            "function handler(w) {\n  const a = 1;\n  w.url = new URL(w.payload.nope).href;\n}",
            "transforms/t.js:3:19 TypeError: Invalid URL",
        ),
        (
            "function handler(w) {\n  return new Date().toLocaleString('en-US',"
            " {timeZone: 'Mars/Base'});\n}",
            "transforms/t.js:2:21 RangeError: Invalid time zone specified: Mars/Base",
        ),
        (
            "function fmt(n) {\n  return n.toLocaleString('en-US', {style: 'currency'});\n}\n"
            "function handler(w) { return fmt(1); }",
            "transforms/t.js:2:12 TypeError: Currency code is required with currency style.",
        ),
    ],
)
def test_hostile_handlers_give_clear_errors(
    source: str, expected: str, payment: dict[str, Any]
) -> None:
    transform = make(source)
    started = time.monotonic()
    outcome = transform.run(event_from(payment))
    assert outcome.kind is OutcomeKind.ERROR
    assert outcome.error is not None and expected in outcome.error
    assert time.monotonic() - started < 5
    # The process and a healthy transform are unaffected.
    assert make(HEALTHY).run(event_from(payment)).kind is OutcomeKind.DELIVER


def test_the_same_transform_recovers_after_a_limit_error(payment: dict[str, Any]) -> None:
    transform = make(
        "function handler(w) { if (w.payload.data.total_amount > 1000) while (true) {}\n"
        "  w.url = 'https://api.segment.io/v1/track'; w.payload = {userId: 'u', event: 'A B'};"
        "  return w; }"
    )
    assert transform.run(event_from(payment)).kind is OutcomeKind.ERROR
    payment["data"]["total_amount"] = 5
    assert transform.run(event_from(payment)).kind is OutcomeKind.DELIVER


@pytest.mark.parametrize(
    "item", ["'x'.repeat(1000) + a.length", "'s' + a.length", "{n: a.length}", "[a.length]"]
)
def test_running_out_of_memory_is_the_memory_limit(item: str, payment: dict[str, Any]) -> None:
    """Small allocations leave QuickJS no room for the error object, so it throws null."""
    source = f"function handler(w) {{ const a = []; while (true) a.push({item}); }}"
    outcome = make(source).run(event_from(payment))
    assert outcome.hit_limit
    assert outcome.error == (
        "transforms/t.js: memory limit of 16 MB exceeded (the handler builds something too large)"
    )


def test_out_of_memory_after_a_memory_hungry_event_is_still_the_memory_limit(
    payment: dict[str, Any],
) -> None:
    """An event that held most of the limit must not leave the next one's bomb unrecognised."""
    transform = make(
        "function handler(w) {\n  if (w.payload.data.total_amount > 0) {\n"
        "    const a = []; while (true) a.push('s' + a.length);\n  }\n"
        "  const held = new ArrayBuffer(13 * 1024 * 1024); const after = {};\n"
        "  w.url = 'https://api.segment.io/v1/track'; w.payload = {userId: 'u', event: 'A B'};"
        " return w;\n}"
    )
    payment["data"]["total_amount"] = 0
    assert transform.run(event_from(payment)).kind is OutcomeKind.DELIVER
    payment["data"]["total_amount"] = 1
    outcome = transform.run(event_from(payment))
    assert outcome.hit_limit
    assert outcome.error is not None and "memory limit of 16 MB exceeded" in outcome.error


@pytest.mark.parametrize("value", ["null", "undefined"])
def test_throwing_null_is_the_handlers_error_not_a_limit(
    value: str, payment: dict[str, Any]
) -> None:
    transform = make(f"function handler(w) {{\n  console.log('before');\n  throw {value};\n}}")
    runtime = transform._sandbox()._context
    outcome = transform.run(event_from(payment))
    assert outcome.kind is OutcomeKind.ERROR and not outcome.hit_limit
    assert outcome.error == f"transforms/t.js: handler threw {value}"
    assert outcome.logs == (("log", "before"),)
    assert transform._sandbox()._context is runtime  # kept: nothing was wrong with it


def test_running_out_of_memory_while_serialising_is_the_memory_limit(
    payment: dict[str, Any],
) -> None:
    outcome = make(
        "function handler(w) { const s = 'x'.repeat(3 * 1024 * 1024);\n"
        "  w.url = 'https://api.segment.io/v1/track';"
        " w.payload = {userId: 'u', event: 'A B', parts: [s, s, s, s, s, s]}; return w; }"
    ).run(event_from(payment))
    assert outcome.hit_limit
    assert outcome.error is not None and "memory limit of 16 MB exceeded" in outcome.error


PAYLOAD_TRICKS = {
    "getter that changes after the check": "let reads = 0; Object.defineProperty(w, 'payload',"
    " {get() { reads++; return reads === 1 ? {userId: 'u', event: 'A B'} : function () {}; },"
    " enumerable: true});",
    "toJSON that returns undefined": "w.payload = {toJSON() { return undefined; }};",
    "toJSON that returns a function": "w.payload = {toJSON() { return function () {}; }};",
}


@pytest.mark.parametrize("trick", sorted(PAYLOAD_TRICKS))
def test_the_payload_that_is_checked_is_the_payload_that_is_sent(
    trick: str, payment: dict[str, Any]
) -> None:
    source = (
        "function handler(w) { w.url = 'https://api.segment.io/v1/track';\n"
        f"  {PAYLOAD_TRICKS[trick]}\n  return w; }}"
    )
    outcome = make(source).run(event_from(payment))
    if outcome.kind is OutcomeKind.DELIVER:
        assert outcome.requests[0].payload == {"userId": "u", "event": "A B"}
    else:
        assert outcome.error is not None and "not JSON-serialisable" in outcome.error


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("function handler(w) {\n  return w +;\n}", "transforms/t.js:2:"),
        (
            "'use strict';\nleaked = 1;\nfunction handler(w) { return w; }",
            "transforms/t.js:2:1 ReferenceError",
        ),
        ("var notAHandler = 1;", "no handler function"),
        ("function handler(w) { return w; }\nwhile (true) {}", "time limit"),
    ],
)
def test_files_that_cannot_load_are_reported_at_load(source: str, expected: str) -> None:
    with pytest.raises(HandlerError, match=expected):
        make(source)


def test_syntax_error_names_the_line() -> None:
    with pytest.raises(HandlerError) as caught:
        make("function handler(w) {\n  const x = ;\n  return w;\n}")
    assert str(caught.value).startswith("transforms/t.js:2:")
    assert "SyntaxError" in str(caught.value)


UNCLOSED = "SyntaxError: unexpected end of file: a `{` is not closed (a `}` is missing)"
PAREN_UNCLOSED = (
    "SyntaxError: unexpected end of file: a `(` is not closed, nor what encloses it "
    "(a `)` is missing, then more)"
)
STRING_UNCLOSED = "SyntaxError: unterminated string: the ' here is not closed on its line"
TEMPLATE_UNCLOSED = "SyntaxError: unterminated template literal: its closing ` is missing"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("function handler(w) {", f"1:22 {UNCLOSED}"),
        ("function handler(w) {\n", f"1:22 {UNCLOSED}"),
        (
            "function handler(w) {\n  if (w.x) {\n    w.y = 1;\n  }\n  return w;\n",
            f"5:12 {UNCLOSED}",
        ),
        ("function handler(w) {\n  return w; // the end\n\n", f"3:1 {UNCLOSED}"),
        ("function handler(w) {\r\n  return w;\r\n", f"2:12 {UNCLOSED}"),
        (
            "function handler(w) {\n  if (w.x) {\n    return w;\n",
            "3:14 SyntaxError: unexpected end of file: a `{` is not closed, nor what encloses it "
            "(a `}` is missing, then more)",
        ),
        ("function handler(w) { return String(w", f"1:38 {PAREN_UNCLOSED}"),
        ("function handler(w) {\n  return String(w\n", f"2:18 {PAREN_UNCLOSED}"),
        ("function handler(w) {\n  w.x = String(w;\n  return w;\n}\n", "2:17 SyntaxError"),
        (
            "function handler(w) {\n  return w;\n}\nconst limit =\n",
            "4:14 SyntaxError: unexpected end of file: the last statement is not finished, "
            "or a `{`, `(` or `[` is not closed",
        ),
        ("function handler(w) { return 'abc", f"1:30 {STRING_UNCLOSED}"),
        ("function handler(w) {\n  w.x = 'abc;\n  return w;\n}\n", f"2:9 {STRING_UNCLOSED}"),
        ("function handler(w) { return `abc", f"1:30 {TEMPLATE_UNCLOSED}"),
        ("function handler(w) {\n  w.x = `abc;\n  return w;\n}\n", f"2:9 {TEMPLATE_UNCLOSED}"),
        ("function handler(w) {\n  return `a ${w.x\n}", f"3:1 {TEMPLATE_UNCLOSED}"),
        (
            "function handler(w) { return w; } /* the end",
            "1:35 SyntaxError: unterminated comment: the /* here has no closing */",
        ),
        (
            "function handler(w) {\n  return w;\n}\n}\n",
            "4:1 SyntaxError: Unexpected token '}': no `{` is open",
        ),
    ],
)
def test_a_file_that_does_not_compile_is_reported_inside_it(source: str, expected: str) -> None:
    """Not in the factory's closing text after the file (which is not the user's to read)."""
    with pytest.raises(HandlerError) as caught:
        make(source)
    message = str(caught.value)
    assert message.startswith(f"transforms/t.js:{expected}")
    line, column = map(int, message.split(" ", 1)[0].split(":")[1:3])
    lines = source.removesuffix("\n").split("\n")
    assert 1 <= line <= len(lines) and 1 <= column <= len(lines[line - 1].rstrip("\r")) + 1


def test_a_file_that_does_not_compile_runs_none_of_its_code() -> None:
    """Compiling it alone, to find where it ends too soon, must not run its top level."""
    started = time.monotonic()
    with pytest.raises(HandlerError) as caught:
        make("while (true) {}\nfunction handler(w) {\n  return w;\n", Limits(time_seconds=5))
    assert str(caught.value) == f"transforms/t.js:3:12 {UNCLOSED}"
    assert time.monotonic() - started < 2  # not the 5 s of a loop cut by the time limit


def test_columns_count_characters_not_utf8_bytes(payment: dict[str, Any]) -> None:
    source = "function handler(w) {\n  const s = 'ééé'; return w.x.y;\n}"
    assert make(source).run(event_from(payment)).error == (
        "transforms/t.js:2:27 TypeError: cannot read property 'y' of undefined"
    )
    with pytest.raises(HandlerError) as caught:
        make("function handler(w) {\n  w.a = 'ééé'; w.b = 'x;\n  return w;\n}")
    assert str(caught.value).startswith("transforms/t.js:2:22 SyntaxError: unterminated string")


def test_console_is_captured_per_event_and_bounded(payment: dict[str, Any]) -> None:
    transform = make(
        "function handler(w) { console.log('type', w.eventType, {n: 1});"
        " console.error('oops'); return w; }"
    )
    outcome = transform.run(event_from(payment))
    assert outcome.logs == (("log", 'type payment.succeeded {"n":1}'), ("error", "oops"))
    assert transform.run(event_from(payment)).logs == outcome.logs  # not accumulated
    flood = make(
        "function handler(w) { for (let i = 0; i < 100000; i++) console.log('x'.repeat(100));"
        " return w; }"
    ).run(event_from(payment))
    assert sum(len(message) for _, message in flood.logs[:-1]) == 4096
    assert "console output cut" in flood.logs[-1][1]


ISOLATION_PROBES = {
    "top-level variable": "var count = 0; function handler(w) { count++; return mark(w, count); }",
    "globalThis property": "function handler(w) { try { globalThis.seen = (globalThis.seen || 0) + 1;"
    " } catch (e) {} return mark(w, globalThis.seen || 1); }",
    "implicit global": "function handler(w) { try { total = (typeof total === 'number' ? total : 0) + 1;"
    " return mark(w, total); } catch (e) { return mark(w, 1); } }",
    "built-in prototype": "function handler(w) { try { Array.prototype.hits = ([].hits || 0) + 1;"
    " } catch (e) {} return mark(w, [].hits || 1); }",
    "defineProperty on global": "function handler(w) { const n = typeof k === 'undefined' ? 1 : 2;"
    " Object.defineProperty(globalThis, 'k', {value: 7, configurable: false});"
    " return mark(w, n); }",
    "replaced built-in": "function handler(w) { try { JSON.stringify = function () { return '{}'; }; }"
    " catch (e) {} try { Math = null; } catch (e) {} return mark(w, Math ? 1 : 2); }",
}
MARK = (
    "\nfunction mark(w, n) { w.url = 'https://api.segment.io/v1/track';"
    " w.payload = {userId: 'u', event: 'Probe Seen', properties: {n: n}}; return w; }"
)


@pytest.mark.parametrize("name", sorted(ISOLATION_PROBES))
def test_nothing_one_event_writes_is_seen_by_the_next(name: str, payment: dict[str, Any]) -> None:
    transform = make(ISOLATION_PROBES[name] + MARK)
    seen = [transform.run(event_from(payment)) for _ in range(3)]
    assert [outcome.kind for outcome in seen] == [OutcomeKind.DELIVER] * 3, seen[0].error
    assert [outcome.requests[0].payload["properties"]["n"] for outcome in seen] == [1, 1, 1]


def test_ordinary_code_still_overrides_inherited_methods(payment: dict[str, Any]) -> None:
    source = (
        "function Money(c) { this.c = c; }\n"
        "Money.prototype.toString = function () { return (this.c / 100).toFixed(2); };\n"
        "function handler(w) { w.url = 'https://api.segment.io/v1/track';"
        " w.payload = {userId: 'u', event: 'Payment Completed',"
        " properties: {amount: String(new Money(w.payload.data.total_amount))}}; return w; }"
    )
    outcome = make(source).run(event_from(payment))
    assert outcome.requests[0].payload["properties"]["amount"] == "24.99"


def test_transforms_do_not_share_a_runtime(payment: dict[str, Any]) -> None:
    first, second = make(HEALTHY), make(HEALTHY)
    assert first._sandbox() is not second._sandbox()


SPIN = (
    "function handler(w) { const end = Date.now() + %d; while (Date.now() < end) {}"
    " w.url = 'https://api.segment.io/v1/track'; w.payload = {userId: 'u', event: 'Spin Done'};"
    " return w; }"
)


def test_concurrent_handlers_do_not_eat_each_others_time_budget(payment: dict[str, Any]) -> None:
    """The binding counts process CPU; two handlers using 60% of their limit at once must both pass."""
    limits = Limits(time_seconds=0.5)
    transform = Transform(name="spin", source=SPIN % 300, filename="spin.js", limits=limits)
    results: list[OutcomeKind] = []

    def busy_python() -> None:
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            pass

    def spin() -> None:
        results.append(transform.run(event_from(payment)).kind)

    threads = [threading.Thread(target=spin) for _ in range(2)] + [
        threading.Thread(target=busy_python)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [OutcomeKind.DELIVER, OutcomeKind.DELIVER]


def test_an_endless_loop_still_stops_under_contention(payment: dict[str, Any]) -> None:
    limits = Limits(time_seconds=0.2)
    looping = Transform(
        name="loop",
        source="function handler(w) { while (true) {} }",
        filename="loop.js",
        limits=limits,
    )
    kinds: list[OutcomeKind] = []
    threads = [
        threading.Thread(target=lambda: kinds.append(looping.run(event_from(payment)).kind))
        for _ in range(3)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert kinds == [OutcomeKind.ERROR] * 3
    assert time.monotonic() - started < 10


def test_a_handler_throwing_a_bare_internal_error_is_its_own_error(
    payment: dict[str, Any],
) -> None:
    """A bare InternalError is read as out of memory only under memory pressure."""
    outcome = make("function handler(w) { throw new InternalError(); }").run(event_from(payment))
    assert not outcome.hit_limit and "InternalError" in (outcome.error or "")


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        # Past 64 bits: orjson would make it a float, written again with other digits.
        ("36893488147419103232", 36893488147419103000),
        ("'\\ud800 x'", "\ud800 x"),  # a lone surrogate, which orjson refuses
        ("'Ada'", "Ada"),
    ],
)
def test_what_a_handler_returns_is_read_as_written(
    field: str, expected: object, payment: dict[str, Any]
) -> None:
    """The report is read by orjson where it reads it as JSON.stringify wrote it."""
    source = (
        "function handler(webhook) { webhook.url = 'https://api.segment.io/v1/track';"
        f" webhook.payload = {{ userId: 'u', event: 'Some Thing', value: {field} }};"
        " return webhook; }"
    )
    outcome = Transform(name="t", source=source, filename="t.js").run(event_from(payment))
    assert outcome.kind is OutcomeKind.DELIVER
    value = outcome.requests[0].payload["value"]
    assert value == expected and type(value) is type(expected)
