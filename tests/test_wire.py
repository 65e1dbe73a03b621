"""What a request must be to go on the wire (outbound/wire.py): each rule, and what passes."""

from __future__ import annotations

from typing import Any

import pytest

from dodo_transform.outgoing import OutgoingRequest, wire

URL = "https://api.segment.io/v1/track"


def request(
    url: str = URL, headers: dict[str, str] | None = None, payload: Any = None
) -> OutgoingRequest:
    return OutgoingRequest("POST", url, headers or {}, payload or {"userId": "u"})


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = {"p": value} if level % 2 else [value]
    return value


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-A": "a\r\nInjected: 1"}, "'X-A' holds the character U+000D"),
        ({"X-A": "a\nb"}, "U+000A"),
        ({"X-A": "a\x00b"}, "U+0000"),
        ({"X-A": "a\x1bb"}, "U+001B"),
        ({"X-A": "a\x7f"}, "U+007F"),
        ({"Bad Name": "x"}, "header name 'Bad Name' is not a valid HTTP header name"),
        ({"X-A:": "x"}, "not a valid HTTP header name"),
        ({"": "x"}, "not a valid HTTP header name"),
        ({"X-\ud83d": "x"}, "not a valid HTTP header name"),
        ({"Content-Length": "5"}, "'Content-Length' is set by the HTTP client"),
        ({"transfer-encoding": "chunked"}, "'transfer-encoding' is set by the HTTP client"),
        ({"Host": "169.254.169.254"}, "'Host' is set by the HTTP client"),
        ({"Connection": "close"}, "set by the HTTP client"),
        ({"Upgrade": "h2c"}, "set by the HTTP client"),
        ({"TE": "trailers"}, "set by the HTTP client"),
        ({"Keep-Alive": "timeout=5"}, "set by the HTTP client"),
        ({"Proxy-Authorization": "Basic eDp5"}, "set by the HTTP client"),
        ({"X-City": "Łódź"}, "U+0141, beyond Latin-1"),
        ({"X-Name": "\ud83d Ada"}, "U+D83D, beyond Latin-1"),
    ],
)
def test_headers_that_cannot_be_sent_are_named(headers: dict[str, str], message: str) -> None:
    problem = wire.problem(request(headers=headers))
    assert problem is not None and message in problem


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://api.segment.io/v1/track?q=a\x01b", "U+0001"),
        ("https://api.segment.io/v1/track?q=a b", "U+0020"),
        ("https://api.segment.io/v1/tr\tack", "U+0009"),
        ("https://api.segment.io/v1/track\r\nHost: x", "U+000D"),
        ("https://api.segment.io/v1/track?q=\ud83d", "U+D83D"),
        ("https://api.segment.io:99999/v1/track", "not usable"),
    ],
)
def test_urls_that_cannot_be_sent_are_named(url: str, message: str) -> None:
    problem = wire.problem(request(url=url))
    assert problem is not None and message in problem


def test_payloads_nested_too_deeply_are_named() -> None:
    assert wire.problem(request(payload=nested(wire.MAX_PAYLOAD_DEPTH))) is None
    problem = wire.problem(request(payload=nested(wire.MAX_PAYLOAD_DEPTH + 1)))
    assert problem == f"payload is nested more than {wire.MAX_PAYLOAD_DEPTH} levels deep"


@pytest.mark.parametrize(("value", "depth"), [("x", 0), ({}, 1), ([[]], 2), (nested(40), 40)])
def test_nesting_depth(value: Any, depth: int) -> None:
    assert wire.nesting_depth(value, 100) == depth


def test_ordinary_requests_pass_and_latin1_values_go_out_as_latin1_bytes() -> None:
    headers = {"X-Customer-Name": " José\t", "Authorization": "Basic abc", "X-Count": "3"}
    assert wire.problem(request("https://hooks.example.com/é?a=b&c=d", headers)) is None
    assert wire.wire_headers(headers) == [
        (b"X-Customer-Name", b"Jos\xe9"),
        (b"Authorization", b"Basic abc"),
        (b"X-Count", b"3"),
    ]
