"""Dates, numbers and the small web platform in the sandbox render as V8 renders them.

Each table of JavaScript expressions is evaluated twice: by a handler in our QuickJS sandbox
and by Node.js (V8 with full ICU), and the results must be equal, character for character.
Dodo's connector snippets run on V8 at Svix; these are what they use (`toLocaleDateString()`,
`toLocaleDateString("en-US", {year: "numeric", month: "long", day: "numeric"})`,
`toLocaleString()` on dates and numbers, currency formatting), and what else is cheap.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dodo_transform.transforms import sandbox
from dodo_transform.transforms.engine import OutcomeKind, Transform
from tests.conftest import ROOT, event_from

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")

# A handler that evaluates each expression and reports its JSON, or what it threw.
EVALUATE = """
function handler(webhook) {
  const results = [];
  for (const expression of EXPRESSIONS) {
    try {
      const value = (0, eval)("(" + expression + ")");
      results.push(JSON.stringify(value === undefined ? "undefined" : value));
    } catch (error) {
      results.push("throws " + error.name + ": " + error.message);
    }
  }
  webhook.url = "https://example.com/";
  webhook.payload = results;
  return webhook;
}
"""


def in_sandbox(expressions: list[str]) -> list[str]:
    source = f"const EXPRESSIONS = {json.dumps(expressions)};\n{EVALUATE}"
    outcome = Transform(name="t", source=source, filename="t.js").run(event_from({"type": "x"}))
    assert outcome.kind is OutcomeKind.DELIVER, outcome.error
    results: list[str] = outcome.requests[0].payload
    return results


def in_node(expressions: list[str], tz: str = "UTC") -> list[str]:
    assert NODE is not None
    script = (
        f"const EXPRESSIONS = {json.dumps(expressions)};\n{EVALUATE}\n"
        "process.stdout.write(JSON.stringify(handler({}).payload));"
    )
    done = subprocess.run(
        [NODE, "-"],
        input=script,
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"TZ": tz},
        timeout=60,
    )
    results: list[str] = json.loads(done.stdout)
    return results


def assert_same_as_v8(expressions: list[str]) -> None:
    ours, v8 = in_sandbox(expressions), in_node(expressions)
    different = [
        f"{expression}\n   ours: {mine}\n     v8: {theirs}"
        for expression, mine, theirs in zip(expressions, ours, v8, strict=True)
        if mine != theirs
    ]
    assert not different, f"{len(different)} differ from V8:\n" + "\n".join(different[:30])


INSTANTS = [
    "Date.UTC(2026, 8, 10, 13, 5, 9, 45)",  # the September date, afternoon
    "Date.UTC(2026, 0, 1, 0, 3, 0)",  # midnight
    "Date.UTC(2026, 11, 31, 23, 59, 59, 999)",
    "Date.UTC(2026, 2, 8, 6, 59)",  # a minute before US daylight time begins in New York
    "Date.UTC(2026, 2, 8, 7, 0)",  # and as it begins
    "Date.UTC(2026, 10, 1, 5, 59)",  # a minute before it ends
    "Date.UTC(2026, 10, 1, 6, 0)",
    "Date.UTC(2026, 2, 29, 0, 59)",  # Europe's change, last Sunday of March, 01:00 UTC
    "Date.UTC(2026, 2, 29, 1, 0)",
    "Date.UTC(2026, 9, 25, 0, 59)",
    "Date.UTC(2026, 9, 25, 1, 0)",
    "Date.UTC(2026, 3, 4, 15, 59)",  # Sydney's change, first Sunday of April
    "Date.UTC(2026, 3, 4, 16, 0)",
    "Date.UTC(2026, 9, 3, 15, 59)",  # and of October
    "Date.UTC(2026, 9, 3, 16, 0)",
    "Date.UTC(2024, 1, 29, 12, 0)",  # a leap day
    "Date.UTC(1999, 6, 4, 9, 8, 7)",
]
DATE_OPTIONS = [
    "undefined",
    "{}",
    '{year: "numeric", month: "long", day: "numeric"}',  # the Keplars snippets
    '{year: "numeric", month: "short", day: "numeric"}',
    '{weekday: "long", year: "numeric", month: "long", day: "numeric"}',
    '{weekday: "short", month: "short", day: "numeric"}',
    '{weekday: "long", year: "numeric", month: "numeric", day: "numeric"}',
    '{month: "long", year: "numeric"}',
    '{month: "long"}',
    '{month: "short", day: "numeric"}',
    '{month: "2-digit", day: "2-digit", year: "numeric"}',
    '{year: "2-digit", month: "2-digit", day: "2-digit"}',
    '{month: "numeric", day: "numeric"}',
    '{month: "narrow"}',
    '{weekday: "long"}',
    '{weekday: "narrow"}',
    '{year: "numeric"}',
    '{day: "numeric"}',
    '{hour: "numeric", minute: "2-digit"}',
    '{hour: "2-digit", minute: "2-digit", second: "2-digit"}',
    '{hour: "numeric"}',
    '{hour: "numeric", minute: "numeric", hour12: false}',
    '{hour: "2-digit", minute: "2-digit", hourCycle: "h23"}',
    '{hour: "numeric", hourCycle: "h11"}',
    '{hour: "numeric", minute: "2-digit", second: "2-digit", hour12: false}',
    '{minute: "2-digit", second: "2-digit"}',
    '{hour: "numeric", minute: "numeric", second: "numeric", fractionalSecondDigits: 3}',
    '{hour: "numeric", minute: "2-digit", timeZoneName: "short"}',
    '{hour: "numeric", minute: "2-digit", timeZoneName: "long"}',
    '{hour: "numeric", timeZoneName: "shortOffset"}',
    '{hour: "numeric", timeZoneName: "longOffset"}',
    '{year: "numeric", month: "long", day: "numeric", hour: "numeric", minute: "2-digit"}',
    '{year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit"}',
    '{month: "short", day: "numeric", hour: "numeric", minute: "2-digit"}',
    '{weekday: "long", hour: "numeric"}',
    '{year: "numeric", month: "long", day: "numeric", timeZoneName: "short"}',
    '{timeZoneName: "short"}',
    '{era: "short"}',
    '{year: "numeric", era: "long"}',
    '{dateStyle: "full"}',
    '{dateStyle: "long"}',
    '{dateStyle: "medium"}',
    '{dateStyle: "short"}',
    '{timeStyle: "full"}',
    '{timeStyle: "long"}',
    '{timeStyle: "medium"}',
    '{timeStyle: "short"}',
    '{dateStyle: "full", timeStyle: "long"}',
    '{dateStyle: "long", timeStyle: "short"}',
    '{dateStyle: "medium", timeStyle: "medium"}',
    '{dateStyle: "short", timeStyle: "short", hour12: false}',
]
TIME_ZONES = [
    "UTC",
    "America/New_York",
    "America/Los_Angeles",
    "America/Phoenix",
    "America/St_Johns",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Lisbon",
    "Europe/Berlin",
    "Europe/Kyiv",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Australia/Adelaide",
    "Pacific/Auckland",
    "Etc/GMT+5",
]


def with_zone(options: str, zone: str) -> str:
    zone_option = f"timeZone: {json.dumps(zone)}"
    if options in ("undefined", "{}"):
        return "{" + zone_option + "}"
    return options[:-1] + ", " + zone_option + "}"


@needs_node
@pytest.mark.parametrize("zone", TIME_ZONES)
def test_dates_format_as_in_v8_in_every_supported_time_zone(zone: str) -> None:
    expressions = []
    for instant in INSTANTS:
        for options in DATE_OPTIONS:
            zoned = with_zone(options, zone)
            expressions.append(
                f'new Intl.DateTimeFormat("en-US", {zoned}).format(new Date({instant}))'
            )
        for method in ("toLocaleDateString", "toLocaleTimeString", "toLocaleString"):
            zoned = with_zone("{}", zone)
            expressions.append(f'new Date({instant}).{method}("en-US", {zoned})')
    assert_same_as_v8(expressions)


@needs_node
def test_the_date_methods_without_arguments_use_the_local_time_zone() -> None:
    """The issue's examples: V8 says 9/10/2026 where QuickJS said 09/10/2026."""
    expressions = [
        f"new Date({instant}).{method}({arguments})"
        for instant in INSTANTS
        for method in ("toLocaleDateString", "toLocaleTimeString", "toLocaleString")
        for arguments in ("", '"en-US"', '"en"', 'undefined, {month: "long", day: "numeric"}')
    ]
    expressions += [
        'new Date("2026-09-10T12:00:00Z").toLocaleDateString()',
        'new Date("2026-08-14T12:00:00Z").toLocaleDateString("en-US",'
        ' {year: "numeric", month: "long", day: "numeric"})',
        "new Date(NaN).toLocaleDateString()",
        'new Date(NaN).toLocaleString("en-US", {month: "long"})',
        "new Date(8.64e15).toLocaleDateString()",
    ]
    assert_same_as_v8(expressions)


@needs_node
def test_date_format_objects_behave_as_in_v8() -> None:
    expressions = [
        "new Intl.DateTimeFormat().resolvedOptions()",
        'new Intl.DateTimeFormat("en-US", {timeZone: "UTC"}).resolvedOptions()',
        'new Intl.DateTimeFormat("en", {timeZone: "Asia/Kolkata"}).resolvedOptions()',
        'new Intl.DateTimeFormat("en-US", {hour: "numeric", minute: "numeric",'
        ' timeZone: "UTC"}).resolvedOptions()',
        'new Intl.DateTimeFormat("en-US", {hour: "numeric", hour12: false,'
        ' timeZone: "UTC"}).resolvedOptions()',
        'new Intl.DateTimeFormat("en-US", {weekday: "long", era: "short", year: "2-digit",'
        ' month: "long", day: "2-digit", second: "numeric", fractionalSecondDigits: 2,'
        ' timeZoneName: "short", timeZone: "UTC"}).resolvedOptions()',
        'new Intl.DateTimeFormat("en-US", {dateStyle: "medium", timeStyle: "short",'
        ' timeZone: "UTC"}).resolvedOptions()',
        'new Intl.DateTimeFormat("en-US", {month: "long", day: "numeric", timeZone: "UTC"})'
        ".formatToParts(Date.UTC(2026, 8, 10))",
        'new Intl.DateTimeFormat("en-US", {dateStyle: "full", timeStyle: "short",'
        ' timeZone: "America/New_York"}).formatToParts(Date.UTC(2026, 8, 10, 13))',
        '[Date.UTC(2026, 0, 1), Date.UTC(2026, 6, 1)].map(new Intl.DateTimeFormat("en-US",'
        ' {timeZone: "UTC"}).format)',
        'new Intl.DateTimeFormat("en-US", {timeZone: "utc"}).format(0)',
        "Object.prototype.toString.call(new Intl.DateTimeFormat())",
        'new Intl.DateTimeFormat("en-US", {timeZone: "Mars/Base"})',
        'new Intl.DateTimeFormat("en-US", {month: "bogus"})',
        'new Intl.DateTimeFormat("en-US", {dateStyle: "full", month: "long"})',
        'new Intl.DateTimeFormat("en-US", {timeStyle: "full", timeZoneName: "short"})',
        'new Intl.DateTimeFormat("en_US")',
        'new Intl.DateTimeFormat("en-US").format(new Date(NaN))',
        'new Date(0).toLocaleDateString("en-US", {timeStyle: "short"})',
        'new Date(0).toLocaleTimeString("en-US", {dateStyle: "short"})',
    ]
    assert_same_as_v8(expressions)


VALUES = [
    "0",
    "-0",
    "1",
    "1.005",
    "2.5",
    "-2.5",
    "0.5",
    "-0.5",
    "0.45",
    "0.001",
    "-0.001",
    "1.5",
    "99.95",
    "999.9995",
    "1234",
    "1234.5",
    "-1234.5",
    "12345",
    "999999",
    "1234567.891",
    "123456789.123456",
    "0.000001234",
    "1e21",
    "1.7976931348623157e308",
    "NaN",
    "Infinity",
    "-Infinity",
]
NUMBER_OPTIONS = [
    "undefined",
    '{style: "currency", currency: "USD"}',
    '{style: "currency", currency: "EUR"}',
    '{style: "currency", currency: "JPY"}',
    '{style: "currency", currency: "INR"}',
    '{style: "currency", currency: "CHF"}',
    '{style: "currency", currency: "CAD"}',
    '{style: "currency", currency: "KWD"}',
    '{style: "currency", currency: "XOF"}',
    '{style: "currency", currency: "usd", currencyDisplay: "code"}',
    '{style: "currency", currency: "CAD", currencyDisplay: "narrowSymbol"}',
    '{style: "currency", currency: "USD", currencySign: "accounting"}',
    '{style: "currency", currency: "USD", minimumFractionDigits: 0}',
    '{style: "currency", currency: "USD", maximumFractionDigits: 0}',
    '{style: "percent"}',
    '{style: "percent", minimumFractionDigits: 1}',
    "{minimumFractionDigits: 2, maximumFractionDigits: 2}",
    "{maximumFractionDigits: 0}",
    "{minimumFractionDigits: 4}",
    "{maximumSignificantDigits: 3}",
    "{minimumSignificantDigits: 5}",
    "{minimumIntegerDigits: 3}",
    "{useGrouping: false}",
    '{useGrouping: "min2"}',
    '{notation: "compact"}',
    '{notation: "compact", compactDisplay: "long"}',
    '{notation: "compact", maximumFractionDigits: 1}',
    '{notation: "scientific"}',
    '{notation: "engineering"}',
    '{signDisplay: "always"}',
    '{signDisplay: "exceptZero"}',
    '{signDisplay: "never"}',
    '{signDisplay: "negative"}',
    '{maximumFractionDigits: 0, roundingMode: "ceil"}',
    '{maximumFractionDigits: 0, roundingMode: "floor"}',
    '{maximumFractionDigits: 1, roundingMode: "expand"}',
    '{maximumFractionDigits: 1, roundingMode: "trunc"}',
    '{maximumFractionDigits: 2, roundingMode: "halfEven"}',
    '{maximumFractionDigits: 0, roundingMode: "halfEven"}',
    '{maximumFractionDigits: 0, roundingMode: "halfCeil"}',
    '{maximumFractionDigits: 0, roundingMode: "halfFloor"}',
    '{maximumFractionDigits: 0, roundingMode: "halfTrunc"}',
    '{style: "currency", currency: "USD", trailingZeroDisplay: "stripIfInteger"}',
]


@needs_node
def test_numbers_format_as_in_v8() -> None:
    """The issue's example: (1234567.891).toLocaleString() had no grouping."""
    expressions = [
        f"new Intl.NumberFormat('en-US', {options}).format({value})"
        for value in VALUES
        for options in NUMBER_OPTIONS
    ]
    expressions += [f"({value}).toLocaleString()" for value in VALUES]
    expressions += [
        f"({value}).toLocaleString('en-US', {o})"
        for value in VALUES[:12]
        for o in NUMBER_OPTIONS[:3]
    ]
    expressions += [
        "(12345678901234567890n).toLocaleString()",
        "new Intl.NumberFormat('en-US').format('1234567.891234567891')",
        "new Intl.NumberFormat('en-US').format('abc')",
        "new Intl.NumberFormat('en-US').format(12345678901234567890n)",
        "[1234.5, 0.1 + 0.2].map(new Intl.NumberFormat('en-US').format)",
        "new Intl.NumberFormat('en-US', {style: 'currency', currency: 'USD'}).formatToParts(-1234.5)",
        "new Intl.NumberFormat('en-US', {notation: 'scientific'}).formatToParts(-0.00012)",
        "new Intl.NumberFormat('en-US', {notation: 'compact'}).formatToParts(12345)",
        "new Intl.NumberFormat('en-US', {style: 'percent'}).formatToParts(0.256)",
        "new Intl.NumberFormat().resolvedOptions()",
        "new Intl.NumberFormat('en-US', {style: 'currency', currency: 'EUR'}).resolvedOptions()",
        "new Intl.NumberFormat('en-US', {maximumSignificantDigits: 3}).resolvedOptions()",
        "new Intl.NumberFormat('en-US', {notation: 'compact'}).resolvedOptions()",
        "new Intl.NumberFormat('en-US', {style: 'percent'}).resolvedOptions()",
        "new Intl.NumberFormat('en-US', {style: 'currency'})",
        "new Intl.NumberFormat('en-US', {maximumFractionDigits: 1, minimumFractionDigits: 3})",
        "new Intl.NumberFormat('en-US', {style: 'bogus'})",
        "new Intl.NumberFormat('en-US', {maximumFractionDigits: 101})",
        "Object.prototype.toString.call(new Intl.NumberFormat())",
        "[1234.5, 'x', new Date(Date.UTC(2026, 0, 2))].toLocaleString()",
    ]
    assert_same_as_v8(expressions)


URLS = [
    ('"https://Example.COM:443/a/./b/../c?x=1 2&y=é#frag ment"', "undefined"),
    ('"http://example.com:8080"', "undefined"),
    ('"https://user:p@ss@example.com/"', "undefined"),
    ('"https://example.com/path with spaces/é?q=\\"quoted\\"&t=<tag>"', "undefined"),
    ('"https://hooks.slack.com/services/T000/B000/XXXX"', "undefined"),
    ('"HTTPS://EXAMPLE.com/%7Euser/%2e%2E/x"', "undefined"),
    ('"https://127.0.0.1:8000/x"', "undefined"),
    ('"http://0x7f.1/"', "undefined"),
    ('"http://2130706433/"', "undefined"),
    ('"http://[::1]:3000/"', "undefined"),
    ('"http://[2001:db8:0:0:1:0:0:1]/"', "undefined"),
    ('"http://bücher.example/"', "undefined"),
    ('"mailto:ada@example.com?subject=Hi"', "undefined"),
    ('"data:text/plain,hello world"', "undefined"),
    ('"foo://host/a/../b"', "undefined"),
    ('"file:///etc/hosts"', "undefined"),
    ('"/v1/track?x=1"', '"https://api.segment.io/v1/batch"'),
    ('"track"', '"https://api.segment.io/v1/batch"'),
    ('"../up"', '"https://example.com/a/b/c"'),
    ('"?only=query"', '"https://example.com/a/b?old=1#f"'),
    ('"#only-hash"', '"https://example.com/a/b?old=1"'),
    ('"//other.example/x"', '"https://example.com/a"'),
    ('""', '"https://example.com/a?q#f"'),
    ('"http:relative"', '"http://example.com/a/b"'),
    ('"not a url"', "undefined"),
    ('"https://"', "undefined"),
    ('"https://example.com:99999/"', "undefined"),
    ('"https://exa mple.com/"', "undefined"),
    ('"http://1.2.3.4.5/"', "undefined"),
    ('"relative/path"', "undefined"),
]
URL_PARTS = (
    "[u.href, u.origin, u.protocol, u.username, u.password, u.host, u.hostname, u.port,"
    " u.pathname, u.search, u.hash, [...u.searchParams], JSON.stringify(u), String(u)]"
)


@needs_node
def test_urls_parse_as_in_v8() -> None:
    expressions = [f"(u => {URL_PARTS})(new URL({url}, {base}))" for url, base in URLS]
    expressions += [f"URL.canParse({url}, {base})" for url, base in URLS]
    expressions += [
        "(u => { u.searchParams.set('b', 'x y'); u.searchParams.append('a', '&'); return u.href;"
        " })(new URL('https://example.com/p?a=1&b=2&a=3'))",
        "(u => { u.searchParams.delete('a'); return [u.href, u.search]; })"
        "(new URL('https://example.com/p?a=1#h'))",
        "(u => { u.pathname = '/new path/é'; u.search = '?q=ü'; u.hash = 'top';"
        " u.port = '8443'; u.hostname = 'Other.Example'; return u.href; })"
        "(new URL('https://example.com/old'))",
        "(u => { u.protocol = 'http'; u.port = '80'; return u.href; })"
        "(new URL('https://example.com:8080/'))",
        "(u => { u.search = 'x=1'; return [...u.searchParams]; })(new URL('https://e.com/?a=2'))",
        "(u => { u.href = 'https://x.example/'; return [u.host, u.searchParams.size]; })"
        "(new URL('https://e.com/?a=2'))",
        "(u => { try { u.href = 'nope'; } catch (e) { return e.name + ': ' + e.message; } })"
        "(new URL('https://e.com/'))",
        "Object.prototype.toString.call(new URL('https://e.com'))",
    ]
    assert_same_as_v8(expressions)


@needs_node
def test_search_params_behave_as_in_v8() -> None:
    expressions = [
        "new URLSearchParams('?a=1&b=x+y%20z&a=2&c&=e&d=%zz').toString()",
        "[...new URLSearchParams('a=1&b=2&a=3')]",
        "new URLSearchParams({q: 'Payment Completed', n: 42, u: 'ü&='}).toString()",
        "new URLSearchParams([['a', '1'], ['b', '2']]).toString()",
        "new URLSearchParams(new Map([['a', '1']])).get('a')",
        "(p => [p.get('a'), p.get('x'), p.getAll('a'), p.has('b'), p.has('a', '2'), p.size])"
        "(new URLSearchParams('a=1&b=2&a=3'))",
        "(p => { p.set('a', 'z'); p.delete('b'); p.append('c', 'é'); return p.toString(); })"
        "(new URLSearchParams('a=1&b=2&a=3'))",
        "(p => { p.sort(); return p.toString(); })(new URLSearchParams('z=1&a=2&m=3&a=1'))",
        "(p => { const seen = []; p.forEach((v, k) => seen.push(k + v)); return seen; })"
        "(new URLSearchParams('a=1&b=2'))",
        "[...new URLSearchParams('a=1&b=2').keys(), ...new URLSearchParams('a=1').values()]",
        "new URLSearchParams([['a']])",
        "Object.prototype.toString.call(new URLSearchParams())",
        "new URLSearchParams('a=%F0%9F%98%80&b=%C3').get('a') + new URLSearchParams('b=%C3').get('b')",
    ]
    assert_same_as_v8(expressions)


@needs_node
def test_text_encoding_base64_and_structured_clone_behave_as_in_v8() -> None:
    expressions = [
        "[...new TextEncoder().encode('héllo €𝄞')]",
        "[...new TextEncoder().encode('\\ud800 lone')]",
        "new TextEncoder().encoding",
        "(b => [new TextEncoder().encodeInto('héllo', b), [...b]])(new Uint8Array(4))",
        "new TextDecoder().decode(new Uint8Array([104, 195, 169, 240, 157, 132, 158]))",
        "new TextDecoder().decode(new Uint8Array([0xef, 0xbb, 0xbf, 104, 0xff, 0xc3, 0x28]))",
        "new TextDecoder('utf-8', {ignoreBOM: true}).decode(new Uint8Array([0xef, 0xbb, 0xbf, 104]))",
        "new TextDecoder().decode(new TextEncoder().encode('round ☃ trip').buffer)",
        "new TextDecoder('utf-8', {fatal: true}).decode(new Uint8Array([0xff]))",
        "new TextDecoder('latin1').decode(new Uint8Array([0x41, 0x80, 0x9f, 0xe9, 0xff]))",
        "new TextDecoder('utf-16le').decode(new Uint8Array([0xff, 0xfe, 0x41, 0, 0x3d, 0xd8, 0, 0xde]))",
        "new TextDecoder('ascii').encoding",
        "[new TextDecoder().encoding, new TextDecoder().fatal, new TextDecoder().ignoreBOM]",
        "new TextDecoder().decode()",
        "btoa('user:pass')",
        "btoa('')",
        "btoa('ab')",
        "atob('dXNlcjpwYXNz')",
        "atob(' dXNl cjpw\\nYXNz ')",
        "atob('YQ')",
        "btoa('€')",
        "atob('@@@')",
        "(o => { const c = structuredClone(o); return [c.nested, c.t, c.r.flags, c.d instanceof Date,"
        " c.d.getTime(),"
        " c.m.get('k'), [...c.s], c.self === c, c.a[0] === c.a[1], c !== o]; })"
        "((() => { const shared = {x: 1}; const o = {n: 1, s: new Set([1, 2]),"
        " m: new Map([['k', 'v']]), d: new Date(0), a: [shared, shared], r: /x/gi,"
        " t: new Uint8Array([1, 2]), nested: {deep: [null, true, 'x']}}; o.self = o;"
        " return o; })())",
        "(e => [e.name, e.message, e instanceof RangeError])(structuredClone(new RangeError('bad')))",
        "structuredClone(() => 1)",
        "structuredClone({f() {}})",
        "structuredClone(Symbol('s'))",
        "(e => [e.name, e instanceof Error, e.code])((() => { try { structuredClone(() => 1); }"
        " catch (e) { return e; } })())",
        "structuredClone(undefined)",
        "structuredClone([1, , 3]).length",
    ]
    assert_same_as_v8(expressions)


@needs_node
@pytest.mark.parametrize("tz", ["America/New_York", "Asia/Kolkata"])
def test_local_dates_follow_the_process_time_zone_as_in_v8(tz: str, tmp_path: Path) -> None:
    """Without `timeZone`, both engines use the process's zone (TZ)."""
    expressions = [
        f"new Date({instant}).{method}()"
        for instant in INSTANTS
        for method in ("toLocaleDateString", "toLocaleTimeString", "toLocaleString")
    ]
    script = (
        "import json, sys\n"
        "from tests.test_sandbox_web_platform import in_sandbox\n"
        "print(json.dumps(in_sandbox(json.loads(sys.stdin.read()))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(expressions),
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"TZ": tz, "PYTHONPATH": str(ROOT)},  # for `tests`, run elsewhere
        cwd=tmp_path,
        timeout=120,
    )
    ours: list[Any] = json.loads(done.stdout)
    assert ours == in_node(expressions, tz)


def test_what_the_sandbox_cannot_do_like_v8_fails_loudly() -> None:
    """A silent difference from V8 is the worst outcome: these throw, naming the gap."""
    results = in_sandbox(
        [
            "new TextDecoder('koi8-r')",
            "new Intl.NumberFormat('en-US', {style: 'unit', unit: 'kilobyte'})",
            "new Intl.NumberFormat('en-US', {style: 'currency', currency: 'USD',"
            " currencyDisplay: 'name'})",
            "new Intl.DateTimeFormat('en-US', {calendar: 'japanese'})",
            "new Intl.DateTimeFormat('en-US', {timeZone: 'Asia/Jerusalem'})",
            "new Intl.DateTimeFormat('en-US', {timeZoneName: 'shortGeneric'})",
            "new Intl.NumberFormat('en-US', {maximumFractionDigits: 2, roundingIncrement: 5})",
        ]
    )
    assert results == [
        'throws RangeError: The "koi8-r" encoding is not supported',
        "throws RangeError: dodo-transform: Intl.NumberFormat style unit is not supported here",
        "throws RangeError: dodo-transform: Intl.NumberFormat currencyDisplay name is not"
        " supported here",
        "throws RangeError: dodo-transform: calendar japanese is not supported here",
        "throws RangeError: Invalid time zone specified: Asia/Jerusalem",
        "throws RangeError: dodo-transform: timeZoneName shortGeneric is not supported here",
        "throws RangeError: dodo-transform: Intl.NumberFormat roundingIncrement 5 is not"
        " supported here",
    ]


def test_other_locales_are_formatted_as_en_us_and_the_console_says_so() -> None:
    source = (
        "function handler(w) { w.url = 'https://example.com/';"
        " const d = new Date(Date.UTC(2026, 7, 14));"
        " w.payload = [d.toLocaleDateString('de-DE', {timeZone: 'UTC'}),"
        " (1234.5).toLocaleString('fr-FR'), d.toLocaleDateString('en-GB', {timeZone: 'UTC'}),"
        " Intl.DateTimeFormat.supportedLocalesOf(['en-US', 'en', 'de-DE'])];"
        " return w; }"
    )
    outcome = Transform(name="t", source=source, filename="t.js").run(event_from({"type": "x"}))
    assert outcome.requests[0].payload == ["8/14/2026", "1,234.5", "8/14/2026", ["en-US", "en"]]
    assert outcome.logs == (
        ("warn", "[dodo-transform] Intl: locale de-DE is formatted as en-US"),
        ("warn", "[dodo-transform] Intl: locale fr-FR is formatted as en-US"),
        ("warn", "[dodo-transform] Intl: locale en-GB is formatted as en-US"),
    )


def test_every_file_of_the_web_platform_is_joined_into_the_prelude() -> None:
    """sandbox.py joins the files it lists: one added to web_platform/ but not to the list
    would never load."""
    folder = Path(sandbox.__file__).with_name("web_platform")
    assert sorted(sandbox.WEB_PLATFORM_FILES) == sorted(path.name for path in folder.glob("*"))
