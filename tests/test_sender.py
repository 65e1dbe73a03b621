"""Preparing and sending one request: Segment rewriting, auth, the allowlist, retry timing."""

from __future__ import annotations

import asyncio
import base64
import random
import time
from dataclasses import replace
from typing import Any

import httpx
import pytest

from dodo_transform import __version__
from dodo_transform.errors import BlockedDestination, FinalDelivery, RetryableDelivery
from dodo_transform.outbound.retry import (
    MAX_ATTEMPTS,
    RETRY_WINDOW_SECONDS,
    backoff,
    parse_retry_after,
)
from dodo_transform.outbound.sender import Sender
from dodo_transform.outgoing import OutgoingRequest
from dodo_transform.outgoing.destination import Configured
from dodo_transform.testing import Answer, DestinationStandIn

TRACK = OutgoingRequest(
    "POST", "https://api.segment.io/v1/track", {}, {"userId": "u", "event": "Payment Completed"}
)


def deliverer(handler: Any = None, base: str = "https://api.segment.io", **options: Any) -> Sender:
    transport = httpx.MockTransport(handler or (lambda request: httpx.Response(200)))
    return Sender(segment_base_url=base, transport=transport, **options)


def test_segment_calls_get_basic_auth_with_the_write_key() -> None:
    prepared = deliverer().prepare(TRACK, "wk_123")
    expected = base64.b64encode(b"wk_123:").decode()
    assert prepared.headers["Authorization"] == f"Basic {expected}"
    assert prepared.headers["Content-Type"] == "application/json"


def test_a_handler_authorization_header_is_kept() -> None:
    request = replace(TRACK, headers={"authorization": "Basic own"})
    prepared = deliverer().prepare(request, "wk_123")
    assert prepared.headers == {"authorization": "Basic own", "Content-Type": "application/json"}


def test_segment_urls_are_rewritten_to_the_configured_endpoint() -> None:
    prepared = deliverer(base="http://127.0.0.1:9999/segment").prepare(TRACK, "k")
    assert prepared.url == "http://127.0.0.1:9999/segment/v1/track"
    eu = deliverer(base="https://events.eu1.segmentapis.com").prepare(TRACK, "k")
    assert eu.url == "https://events.eu1.segmentapis.com/v1/track"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:6379/",
        "http://localhost/",
        "http://10.0.0.5/internal",
        "https://api.segment.io.evil.com/v1/track",
        "https://segment.io.example.net/v1/track",
        "https://hooks.example.com/",
    ],
)
def test_hosts_off_the_allowlist_are_blocked(url: str) -> None:
    with pytest.raises(BlockedDestination, match="not an allowed destination"):
        deliverer().prepare(replace(TRACK, url=url), "k")


def test_listed_hosts_are_allowed() -> None:
    allowed = deliverer(allowed_hosts=frozenset({"hooks.example.com"}))
    assert allowed.prepare(replace(TRACK, url="https://hooks.example.com/x"), None).url.endswith(
        "/x"
    )


RESEND = OutgoingRequest("POST", "https://api.resend.com/emails", {}, {"to": ["a@example.com"]})
BEARER = Configured(
    {"Authorization": "Bearer re_123", "X-Api-Version": "2"}, "https://api.resend.com/emails"
)


def test_configured_headers_are_added_unless_the_handler_set_the_same_one() -> None:
    d = deliverer(allowed_hosts=frozenset({"api.resend.com"}))
    prepared = d.prepare(RESEND, None, BEARER)
    assert prepared.headers == {
        "Authorization": "Bearer re_123",
        "X-Api-Version": "2",
        "Content-Type": "application/json",
    }
    own = d.prepare(replace(RESEND, headers={"authorization": "Bearer own"}), None, BEARER)
    assert own.headers == {
        "authorization": "Bearer own",
        "X-Api-Version": "2",
        "Content-Type": "application/json",
    }
    assert RESEND.headers == {}  # the stored request keeps no credential


def test_a_configured_authorization_header_wins_over_the_write_key() -> None:
    own = Configured({"Authorization": "Basic own"}, "https://api.segment.io/v1/track")
    prepared = deliverer().prepare(TRACK, "wk", own)
    assert prepared.headers["Authorization"] == "Basic own"


def test_configured_credentials_go_only_to_the_configured_urls_destination() -> None:
    """A Resend key never reaches Segment (where it replaced the write key), nor any other
    allowed host a handler picks."""
    d = deliverer(allowed_hosts=frozenset({"api.resend.com", "hooks.example.com"}))
    to_segment = d.prepare(TRACK, "wk", BEARER)
    assert to_segment.headers["Authorization"] == "Basic " + base64.b64encode(b"wk:").decode()
    assert "X-Api-Version" not in to_segment.headers
    elsewhere = d.prepare(replace(RESEND, url="https://hooks.example.com/x"), None, BEARER)
    assert elsewhere.headers == {"Content-Type": "application/json"}
    other_port = d.prepare(replace(RESEND, url="http://api.resend.com/emails"), None, BEARER)
    assert "Authorization" not in other_port.headers
    same_origin = d.prepare(replace(RESEND, url="https://api.resend.com/audiences"), None, BEARER)
    assert same_origin.headers["Authorization"] == "Bearer re_123"


def test_the_host_of_the_configured_url_is_allowed_for_that_transform_only() -> None:
    d = deliverer()
    slack = Configured({}, "https://hooks.slack.com/services/T0/B0/x")
    request = replace(RESEND, url="https://hooks.slack.com/services/T0/B0/x")
    assert d.prepare(request, None, slack).url == request.url
    assert d.prepare(replace(request, url="https://hooks.slack.com/other"), None, slack)
    with pytest.raises(BlockedDestination, match="set the transform's url in transforms\\.toml"):
        d.prepare(request, None)  # another transform, nothing configured
    with pytest.raises(BlockedDestination):
        d.prepare(replace(request, url="http://hooks.slack.com/x"), None, slack)  # not its port
    with pytest.raises(BlockedDestination):
        d.prepare(RESEND, None, slack)


def send(status: int, headers: dict[str, str] | None = None) -> int:
    d = deliverer(lambda request: httpx.Response(status, headers=headers or {}, text="nope"))
    return asyncio.run(d.send(d.prepare(TRACK, "k"), 15))


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_retryable_statuses(status: int) -> None:
    with pytest.raises(RetryableDelivery) as caught:
        send(status, {"Retry-After": "7"})
    assert caught.value.status == status
    assert caught.value.retry_after == 7


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 301, 302, 307])
def test_final_statuses(status: int) -> None:
    with pytest.raises(FinalDelivery) as caught:
        send(status)
    assert not isinstance(caught.value, RetryableDelivery)


def test_network_errors_are_retryable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    d = deliverer(refuse)
    with pytest.raises(RetryableDelivery, match="ConnectError"):
        asyncio.run(d.send(d.prepare(TRACK, "k"), 15))


def test_success_returns_the_status() -> None:
    assert send(200) == 200


def test_the_exact_body_is_sent() -> None:
    seen: list[Any] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(
            (request.method, str(request.url), request.headers["authorization"], request.content)
        )
        return httpx.Response(200)

    d = deliverer(record)
    asyncio.run(d.send(d.prepare(TRACK, "k"), 15))
    assert seen == [
        (
            "POST",
            "https://api.segment.io/v1/track",
            "Basic " + base64.b64encode(b"k:").decode(),
            b'{"userId":"u","event":"Payment Completed"}',  # compact, as in a Segment batch
        )
    ]


def test_the_retry_schedule_ends_inside_segments_dedup_window() -> None:
    for seed in range(20):
        rng = random.Random(seed)
        total = sum(backoff(attempt, rng) for attempt in range(1, MAX_ATTEMPTS))
        assert total < RETRY_WINDOW_SECONDS
    rng = random.Random(1)
    delays = [backoff(attempt, rng) for attempt in range(1, 6)]
    assert delays == sorted(delays) and delays[0] <= 5


def test_retry_after_is_honoured_but_capped() -> None:
    rng = random.Random(1)
    assert backoff(1, rng, retry_after=30) == 30
    assert backoff(1, rng, retry_after=10**9) == 3600


def test_parse_retry_after() -> None:
    assert parse_retry_after("12", 0) == 12
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470) == 10
    assert parse_retry_after("soon", 0) is None
    assert parse_retry_after(None, 0) is None


@pytest.mark.parametrize(
    ("headers", "url", "message"),
    [
        ({"X-A": "a\r\nInjected: 1"}, TRACK.url, "header 'X-A' holds the character U+000D"),
        ({"Bad Name": "x"}, TRACK.url, "header name 'Bad Name' is not a valid HTTP header name"),
        ({"Content-Length": "5"}, TRACK.url, "'Content-Length' is set by the HTTP client"),
        ({"Transfer-Encoding": "chunked"}, TRACK.url, "set by the HTTP client"),
        ({"X-Name": "\ud83d Ada"}, TRACK.url, "U+D83D, beyond Latin-1"),
        ({"X-City": "Łódź"}, TRACK.url, "U+0141, beyond Latin-1"),
        ({}, TRACK.url + "?q=a\x01b", "U+0001, which a URL cannot carry"),
        ({}, TRACK.url + "?q=a b", "U+0020, which a URL cannot carry"),
    ],
)
def test_a_stored_request_that_can_never_be_sent_is_final(
    headers: dict[str, str], url: str, message: str
) -> None:
    """Requests stored before these rules existed are refused before any attempt."""
    sent: list[httpx.Request] = []
    d = deliverer(lambda request: sent.append(request) or httpx.Response(200))
    with pytest.raises(FinalDelivery, match="cannot be sent: ") as refused:
        d.prepare(replace(TRACK, url=url, headers=headers), "k")
    assert message in str(refused.value) and sent == []


def test_a_latin1_header_value_goes_out_as_latin1_bytes() -> None:
    seen: list[httpx.Request] = []
    d = deliverer(lambda request: seen.append(request) or httpx.Response(200))
    request = replace(TRACK, headers={"X-Customer-Name": "José "})
    assert asyncio.run(d.send(d.prepare(request, "k"), 15)) == 200
    assert (b"X-Customer-Name", b"Jos\xe9") in seen[0].headers.raw


def test_a_content_type_set_by_the_handler_is_not_doubled() -> None:
    prepared = deliverer().prepare(replace(TRACK, headers={"content-type": "text/plain"}), "k")
    assert [name for name in prepared.headers if name.lower() == "content-type"] == ["content-type"]


@pytest.mark.parametrize(
    "error",
    [
        httpx.LocalProtocolError("Illegal header value b'a\\r\\nb'"),
        httpx.UnsupportedProtocol("Request URL has an unsupported protocol 'ftp://'."),
        httpx.InvalidURL("Invalid port: '99999'"),
    ],
)
def test_a_request_the_http_client_refuses_is_final_not_retried(error: Exception) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise error

    d = deliverer(refuse)
    with pytest.raises(FinalDelivery, match=f"cannot be sent: {type(error).__name__}"):
        asyncio.run(d.send(d.prepare(TRACK, "k"), 15))


def test_requests_say_who_sends_them_unless_the_handler_did() -> None:
    seen: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["user-agent"])
        return httpx.Response(200)

    d = deliverer(record)
    asyncio.run(d.send(d.prepare(TRACK, "k"), 15))
    own = replace(TRACK, headers={"User-Agent": "merchant-relay/2"})
    asyncio.run(d.send(d.prepare(own, "k"), 15))
    assert seen == [f"dodo-transform/{__version__}", "merchant-relay/2"]


# --- one attempt against a real local destination: its deadline and what is read --------------


def attempt_at(standin: DestinationStandIn, timeout: float = 2.0, **request: Any) -> float:
    """Send one request to `standin`; how long the attempt took (it raises what send raises)."""
    sender = Sender(
        segment_base_url="https://api.segment.io",
        allowed_hosts=frozenset({standin.url.removeprefix("http://")}),
    )
    prepared = sender.prepare(replace(RESEND, url=standin.url + "/hook", **request), None)

    async def run() -> float:
        started = time.monotonic()
        try:
            await sender.send(prepared, timeout, {"re_secret_123"})
        finally:
            await sender.close()
        return time.monotonic() - started

    return asyncio.run(run())


def test_a_2xx_is_delivered_at_its_head_however_its_body_trickles() -> None:
    with DestinationStandIn(Answer(200, trickle_seconds=2.0)).running() as trickling:
        assert attempt_at(trickling) < 1.5


def test_an_attempt_has_one_deadline_for_all_of_it() -> None:
    """A trickled error body and a late head both end at the deadline, not per read."""
    for answer in (Answer(500, trickle_seconds=0.3, body=b"x" * 100), Answer(200, delay=5)):
        with DestinationStandIn(answer).running() as slow:
            started = time.monotonic()
            with pytest.raises(RetryableDelivery, match="no complete answer within 1 s"):
                attempt_at(slow, timeout=1.0)
            assert time.monotonic() - started < 2.5


def test_only_the_start_of_an_error_body_is_read() -> None:
    huge = 200 * 1024 * 1024
    flooding = DestinationStandIn(Answer(400, body_bytes=huge))
    with flooding.running(), pytest.raises(FinalDelivery, match=r"HTTP 400: x{50}") as refused:
        attempt_at(flooding, timeout=10.0)
    assert len(str(refused.value)) < 300


def test_credentials_an_answer_echoes_are_scrubbed_from_the_reason() -> None:
    careless = DestinationStandIn(Answer(401, echo_headers=True))
    with careless.running(), pytest.raises(FinalDelivery) as refused:
        attempt_at(careless, headers={"Authorization": "Bearer re_secret_123"})
    assert "re_secret_123" not in str(refused.value)
    assert '"Authorization": "[redacted]"' in str(refused.value)


def test_delivered_requests_keep_their_connection_for_the_next() -> None:
    with DestinationStandIn().running() as destination:
        sender = Sender(
            segment_base_url="https://api.segment.io",
            allowed_hosts=frozenset({destination.url.removeprefix("http://")}),
        )
        prepared = sender.prepare(replace(RESEND, url=destination.url + "/hook"), None)

        async def run() -> None:
            for _ in range(10):
                await sender.send(prepared, 5)
            await sender.close()

        asyncio.run(run())
    assert (len(destination.requests()), destination.connections) == (10, 1)
