"""The handler contract: what comes in, what is read back, and each outcome."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dodo_transform.errors import HandlerError, PayloadError
from dodo_transform.transforms.engine import OutcomeKind, Transform
from dodo_transform.transforms.event import Event
from dodo_transform.transforms.sandbox import Sandbox
from tests.conftest import SHIPPED, event_from


def run(source: str, body: dict[str, Any], **options: Any) -> Any:
    return Transform(name="t", source=source, filename="t.js", **options).run(event_from(body))


def test_handler_receives_the_documented_webhook_object(payment: dict[str, Any]) -> None:
    source = (
        "function handler(w) { w.url = 'https://hooks.example.com/x';"
        " w.payload = {seen: Object.keys(w).sort(), method: w.method, url0: w.url, type: w.eventType,"
        " amount: w.payload.data.total_amount, cancel: w.cancel, headers: w.headers, env: w.env};"
        " return w; }"
    )
    outcome = run(source, payment, env={"REGION": "eu"})
    assert outcome.requests[0].payload == {
        "seen": ["cancel", "env", "eventType", "headers", "method", "mode", "payload", "url"],
        "method": "POST",
        "url0": "https://hooks.example.com/x",
        "type": "payment.succeeded",
        "amount": 2499,
        "cancel": False,
        "headers": {},
        "env": {"REGION": "eu"},
    }


@pytest.mark.parametrize("mode", ["live", "test", None])
def test_the_handler_sees_which_dodo_endpoint_sent_the_event(
    payment: dict[str, Any], mode: str | None
) -> None:
    """`webhook.mode`: live, test, or null where it is not known (a sample file)."""
    source = (
        "function handler(w) { w.url = 'https://hooks.example.com/x';"
        " w.payload = {mode: w.mode}; w.mode = 'changed'; return w; }"
    )
    event = Event("payment.succeeded", json.dumps(payment), "msg_1", mode)
    transform = Transform(name="t", source=source, filename="t.js")
    assert transform.run(event).requests[0].payload == {"mode": mode}


def test_default_url_is_configurable_and_untouched_webhooks_are_delivered_as_is(
    payment: dict[str, Any],
) -> None:
    outcome = run(
        "function handler(w) { return w; }", payment, default_url="https://hooks.example.com/in"
    )
    assert outcome.kind is OutcomeKind.DELIVER
    assert outcome.requests[0].url == "https://hooks.example.com/in"
    assert outcome.requests[0].payload == payment


def test_untouched_url_means_skipped(payment: dict[str, Any]) -> None:
    assert run("function handler(w) { return w; }", payment).kind is OutcomeKind.SKIPPED


def test_cancel_means_cancelled(payment: dict[str, Any]) -> None:
    source = "function handler(w) { w.url = 'https://api.segment.io/v1/track'; w.cancel = true; return w; }"
    assert run(source, payment).kind is OutcomeKind.CANCELLED


def test_event_type_and_env_changes_are_ignored_and_method_and_headers_are_read(
    payment: dict[str, Any],
) -> None:
    source = (
        "function handler(w) { w.eventType = 'hacked'; w.env = {x: 1}; w.method = 'patch';"
        " w.headers = {'X-Trace': 'abc', 'X-Count': 3}; w.url = 'https://hooks.example.com/p';"
        " w.payload = {ok: true}; return w; }"
    )
    request = run(source, payment).requests[0]
    assert (request.method, request.headers) == ("PATCH", {"X-Trace": "abc", "X-Count": "3"})


def test_array_fans_out_and_drops_cancelled_items(payment: dict[str, Any]) -> None:
    source = (
        "function handler(w) { const a = Object.assign({}, w, {url: 'https://h.example.com/1'});"
        " const b = Object.assign({}, w, {url: 'https://h.example.com/2', method: 'PUT'});"
        " const c = Object.assign({}, w, {url: 'https://h.example.com/3', cancel: true});"
        " return [a, b, c]; }"
    )
    outcome = run(source, payment)
    assert outcome.kind is OutcomeKind.DELIVER
    assert [(r.method, r.url) for r in outcome.requests] == [
        ("POST", "https://h.example.com/1"),
        ("PUT", "https://h.example.com/2"),
    ]


def test_empty_array_is_cancelled(payment: dict[str, Any]) -> None:
    assert run("function handler(w) { return []; }", payment).kind is OutcomeKind.CANCELLED


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("w.url = 'https://h.example.com/'; w.method = 'DELETE';", "method 'DELETE'"),
        ("w.url = '/v1/track';", "is not an absolute http(s) URL"),
        ("w.url = 'file:///etc/passwd';", "is not an absolute http(s) URL"),
        ("w.url = 42;", "url in the returned value is not a string"),
        (
            "w.url = 'https://h.example.com/'; w.payload = undefined;",
            "payload in the returned value is undefined",
        ),
        ("w.url = 'https://h.example.com/'; w.payload = function () {};", "is function"),
        ("w.url = 'https://h.example.com/'; w.payload = {n: 10n};", "not JSON-serialisable"),
        (
            "w.url = 'https://h.example.com/'; const o = {}; o.self = o; w.payload = o;",
            "not JSON-serialisable",
        ),
        (
            "w.url = 'https://h.example.com/'; w.headers = 'x';",
            "headers in the returned value must be an object",
        ),
        ("w.url = 'https://h.example.com/'; w.headers = {a: {b: 1}};", "header 'a'"),
    ],
)
def test_contract_violations_are_errors_that_say_what_to_do(
    body: str, message: str, payment: dict[str, Any]
) -> None:
    outcome = run(f"function handler(w) {{ {body} return w; }}", payment)
    assert outcome.kind is OutcomeKind.ERROR
    assert (
        outcome.error is not None and message in outcome.error and outcome.error.startswith("t.js")
    )


def test_fan_out_errors_name_the_item(payment: dict[str, Any]) -> None:
    outcome = run("function handler(w) { return [w, null]; }", payment)
    assert outcome.error == (
        "t.js: item 1 of the returned array is null; return the webhook object "
        "(set webhook.cancel = true to skip an event)"
    )


def test_logs_survive_a_throw(payment: dict[str, Any]) -> None:
    outcome = run(
        "function handler(w) { console.warn('about to fail'); throw new Error('x'); }", payment
    )
    assert outcome.logs == (("warn", "about to fail"),)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"type": 5}', "no string field `type`"),
        (b"{", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_unusable_bodies_raise_payload_error(body: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        Event.from_body(body)


def test_outcome_json_has_the_documented_keys(payment: dict[str, Any]) -> None:
    outcome = run(
        "function handler(w) { w.url = 'https://api.segment.io/v1/track';"
        " w.headers = {Authorization: 'Basic c2VjcmV0Og=='}; w.payload = {event: 'x'}; return w; }",
        payment,
    )
    shown = outcome.to_json()
    assert list(shown) == ["outcome", "requests", "logs", "warnings", "error"]
    assert shown["requests"][0]["headers"] == {"Authorization": "[redacted]"}
    assert any("neither userId nor anonymousId" in warning for warning in shown["warnings"])


def nest(depth: int) -> str:
    """JavaScript that sets `w.payload` to an object nested `depth` levels deep."""
    return (
        f"let p = {{}}; for (let i = 1; i < {depth}; i++) p = {{p}};"
        " w.url = 'https://api.segment.io/v1/track'; w.payload = p;"
    )


@pytest.mark.parametrize(
    ("depth", "message"),
    [
        (2_000, "t.js: the returned webhook is nested too deeply to read"),
        (600, "t.js: in the returned value, payload is nested more than 512 levels deep"),
    ],
)
def test_a_payload_nested_too_deeply_is_an_error_outcome(
    depth: int, message: str, payment: dict[str, Any]
) -> None:
    outcome = run(f"function handler(w) {{ {nest(depth)} return w; }}", payment)
    assert outcome.kind is OutcomeKind.ERROR
    assert outcome.error is not None and outcome.error.startswith(message)


def test_a_payload_nested_300_deep_is_delivered(payment: dict[str, Any]) -> None:
    outcome = run(f"function handler(w) {{ {nest(300)} return w; }}", payment)
    assert outcome.kind is OutcomeKind.DELIVER


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda source: source[: source.rindex("}")] + source[source.rindex("}") + 1 :],
            ":20:1 SyntaxError: unexpected end of file: a `{` is not closed (a `}` is missing)",
        ),
        (lambda source: source + "}\n", ":21:1 SyntaxError: Unexpected token '}': no `{` is open"),
    ],
    ids=["last brace removed", "a brace too many"],
)
def test_a_brace_slip_in_the_docs_handler_names_a_line_of_its_file(
    edit: Callable[[str], str], expected: str, tmp_path: Path
) -> None:
    docs = (SHIPPED / "segment_track_payments.js").read_text()
    assert len(docs.splitlines()) == 20
    path = tmp_path / "copy.js"
    path.write_text(edit(docs))
    with pytest.raises(HandlerError) as caught:
        Transform.from_file(path)
    assert str(caught.value) == f"{path}{expected}"


@pytest.mark.parametrize(
    "failure",
    [
        RecursionError("maximum recursion depth exceeded"),
        KeyError("items"),
        TypeError("'NoneType' object is not subscriptable"),
        ValueError("bad report"),
        MemoryError(),
        RuntimeError("anything at all"),
    ],
)
def test_any_exception_while_running_is_an_error_outcome_and_the_next_event_runs(
    failure: Exception, payment: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    transform = Transform(name="t", source="function handler(w) { return w; }", filename="t.js")

    def broken(*args: Any) -> Any:
        raise failure

    with monkeypatch.context() as patch:
        patch.setattr(Sandbox, "run", broken)
        outcome = transform.run(event_from(payment))
    assert outcome.kind is OutcomeKind.ERROR
    assert outcome.error is not None and outcome.error.startswith("t.js: ")
    assert not outcome.hit_limit
    assert transform.run(event_from(payment)).kind is OutcomeKind.SKIPPED


@pytest.mark.parametrize(
    ("headers", "url", "message"),
    [
        ("{'X-A': 'a\\r\\nInjected: 1'}", "", "header 'X-A' holds the character U+000D"),
        ("{'Bad Name': 'x'}", "", "header name 'Bad Name' is not a valid HTTP header name"),
        ("{'Content-Length': '5'}", "", "header 'Content-Length' is set by the HTTP client"),
        ("{'Transfer-Encoding': 'chunked'}", "", "'Transfer-Encoding' is set by the HTTP client"),
        ("{'Host': 'internal'}", "", "header 'Host' is set by the HTTP client"),
        ("{'X-City': 'Łódź'}", "", "header 'X-City' holds the character U+0141, beyond Latin-1"),
        ("{'X-Name': '\\ud83d Ada'}", "", "U+D83D, beyond Latin-1"),
        ("{}", "?q=a\\u0001b", "holds the character U+0001, which a URL cannot carry"),
        ("{}", "?q=a b", "holds the character U+0020"),
    ],
)
def test_requests_that_can_never_be_sent_are_errors_naming_the_file(
    headers: str, url: str, message: str, payment: dict[str, Any]
) -> None:
    source = (
        f"function handler(w) {{ w.url = 'https://hooks.example.com/x{url}';"
        f" w.headers = {headers}; return w; }}"
    )
    outcome = run(source, payment)
    assert outcome.kind is OutcomeKind.ERROR
    assert outcome.error is not None
    assert outcome.error.startswith("t.js: in the returned value, ") and message in outcome.error


def test_a_latin1_header_value_is_a_request(payment: dict[str, Any]) -> None:
    source = (
        "function handler(w) { w.url = 'https://hooks.example.com/x';"
        " w.headers = {'X-Customer-Name': 'José'}; return w; }"
    )
    (request,) = run(source, payment).requests
    assert request.headers == {"X-Customer-Name": "José"}


def test_a_lone_surrogate_in_the_payload_is_kept_and_in_logs_is_replaced(
    payment: dict[str, Any],
) -> None:
    payment["data"]["customer"]["name"] = "\ud83d Ada"
    source = (
        "function handler(w) { console.log(w.payload.data.customer.name);"
        " w.url = 'https://api.segment.io/v1/identify';"
        " w.payload = {userId: 'u', traits: {name: w.payload.data.customer.name}}; return w; }"
    )
    outcome = run(source, payment)
    (request,) = outcome.requests
    assert request.payload["traits"]["name"] == "\ud83d Ada"
    assert json.loads(request.encoded())["traits"]["name"] == "\ufffd Ada"
    assert outcome.logs == (("log", "\ufffd Ada"),)
    shown = json.dumps(outcome.to_json(), ensure_ascii=False)  # as `dodo-transform test --json`
    assert "\ufffd Ada" in shown


FAN_OUT = """
function handler(webhook) {
  const out = [];
  for (let i = 0; i < COUNT; i++) out.push({ ...webhook, url: "https://hooks.example.com/" + i });
  return out;
}
"""


def test_one_event_makes_at_most_max_requests_requests(payment: dict[str, Any]) -> None:
    at_limit = run(FAN_OUT.replace("COUNT", "100"), payment)
    assert at_limit.kind is OutcomeKind.DELIVER and len(at_limit.requests) == 100
    over = run(FAN_OUT.replace("COUNT", "60000"), payment)
    assert over.kind is OutcomeKind.ERROR
    assert over.error == (
        "t.js: the handler returned 60000 requests for one event; at most 100 are sent"
        " (max_requests in transforms.toml)"
    )
    raised = run(FAN_OUT.replace("COUNT", "150"), payment, max_requests=200)
    assert len(raised.requests) == 150
