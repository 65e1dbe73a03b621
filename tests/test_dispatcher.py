"""A round of deliveries: Segment batching, messageIds, 400 splitting, 429 pauses, dry runs."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from typing import Any

import httpx
import pytest

from dodo_transform.outbound import batching
from dodo_transform.outbound.dispatcher import Dispatcher, Result
from dodo_transform.outbound.ratelimit import RateLimiter
from dodo_transform.outbound.sender import Sender
from dodo_transform.outgoing import OutgoingRequest
from dodo_transform.outgoing.destination import Configured, DeliveryPolicy
from dodo_transform.store import Delivery, DeliveryStatus

NOW = time.time()


def delivery(
    n: int,
    payload: dict[str, Any] | None = None,
    url: str = "https://api.segment.io/v1/track",
    attempts: int = 0,
    transform: str = "t",
) -> Delivery:
    payload = payload if payload is not None else {"userId": f"u{n}", "event": "Payment Completed"}
    request = OutgoingRequest("POST", url, {}, payload)
    return Delivery(
        n,
        n,
        f"msg_{n}",
        "payment.succeeded",
        transform,
        "v1",
        0,
        0,
        DeliveryStatus.PENDING,
        request,
        [],
        None,
        attempts,
        0.0,
        NOW,
        NOW,
        NOW,
    )


class Recorder:
    """A Segment stand-in at the httpx seam: records bodies, answers from a script."""

    def __init__(self, answer: Any = None) -> None:
        self.requests: list[httpx.Request] = []
        self.answer = answer or (lambda request: httpx.Response(200))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response: httpx.Response = self.answer(request)
        return response

    def batches(self) -> list[list[dict[str, Any]]]:
        return [json.loads(r.content)["batch"] for r in self.requests if r.url.path == "/v1/batch"]


def dispatcher(
    recorder: Recorder,
    *,
    dry_run: bool = False,
    rate: float = 1000.0,
    keys: bool = True,
    configured: Configured | None = None,
) -> Dispatcher:
    deliverer = Sender(
        segment_base_url="https://api.segment.io",
        allowed_hosts=frozenset({"hooks.example.com"}),
        transport=httpx.MockTransport(recorder),
    )
    return Dispatcher(
        deliverer,
        write_key_for=lambda transform: f"key-{transform}" if keys else None,
        limiter=RateLimiter(rate, burst=rate),
        configured_for=lambda transform: configured or Configured(),
        dry_run=dry_run,
        retry_base_seconds=1.0,
    )


def run(d: Dispatcher, due: list[Delivery]) -> dict[int, Result]:
    return {result.delivery.id: result for result in asyncio.run(d.dispatch(due))}


def test_segment_calls_for_one_key_go_out_as_one_batch_with_ids_and_library() -> None:
    recorder = Recorder()
    results = run(dispatcher(recorder), [delivery(n) for n in range(1, 41)])
    assert {r.status for r in results.values()} == {"delivered"}
    (batch,) = recorder.batches()
    assert len(batch) == 40
    assert batch[0]["type"] == "track"
    assert batch[0]["messageId"] == batching.message_id("msg_1", "t", "v1", 0)
    assert batch[0]["context"] == {"library": batching.LIBRARY}
    assert len({m["messageId"] for m in batch}) == 40
    assert "sentAt" in json.loads(recorder.requests[0].content)


def test_each_write_key_gets_its_own_batch() -> None:
    recorder = Recorder()
    run(dispatcher(recorder), [delivery(1, transform="a"), delivery(2, transform="b")])
    assert sorted(r.headers["authorization"] for r in recorder.requests) == sorted(
        ["Basic a2V5LWE6", "Basic a2V5LWI6"]
    )


def test_requests_of_one_transform_with_their_own_headers_go_in_their_own_batches() -> None:
    # What requests alike share is worked out once per group; a handler's own header makes
    # its request unlike the rest.
    recorder = Recorder()
    own = replace(
        delivery(2),
        request=OutgoingRequest(
            "POST",
            "https://api.segment.io/v1/track",
            {"Authorization": "Basic b3duOg=="},
            {"userId": "u2", "event": "Payment Completed"},
        ),
    )
    results = run(dispatcher(recorder), [delivery(1), own, delivery(3)])
    assert {r.status for r in results.values()} == {"delivered"}
    sent = {r.headers["authorization"]: json.loads(r.content)["batch"] for r in recorder.requests}
    assert [m["userId"] for m in sent["Basic b3duOg=="]] == ["u2"]
    assert [m["userId"] for m in sent["Basic a2V5LXQ6"]] == ["u1", "u3"]


def test_handler_fields_win_over_defaults() -> None:
    recorder = Recorder()
    own = {
        "userId": "u",
        "event": "A B",
        "messageId": "mine",
        "context": {"library": {"name": "x"}},
        "timestamp": "2026-01-01T00:00:00Z",
    }
    run(dispatcher(recorder), [delivery(1, own)])
    (message,) = recorder.batches()[0]
    assert (message["messageId"], message["context"], message["timestamp"]) == (
        "mine",
        {"library": {"name": "x"}},
        "2026-01-01T00:00:00Z",
    )


def test_batches_stay_under_segments_limits() -> None:
    recorder = Recorder()
    big = "x" * 20_000
    due = [
        delivery(n, {"userId": "u", "event": "A B", "properties": {"blob": big}})
        for n in range(1, 61)
    ]
    due += [delivery(n) for n in range(61, 400)]
    run(dispatcher(recorder), due)
    for request in recorder.requests:
        assert len(request.content) <= batching.MAX_BATCH_BYTES + 100
        assert len(json.loads(request.content)["batch"]) <= batching.MAX_BATCH_MESSAGES
    assert sum(len(b) for b in recorder.batches()) == 399


def test_a_400_batch_is_split_until_only_the_bad_message_is_dead() -> None:
    def refuse_poison(request: httpx.Request) -> httpx.Response:
        batch = json.loads(request.content)["batch"]
        bad = any(m["userId"] == "u7" for m in batch)
        return httpx.Response(400 if bad else 200)

    recorder = Recorder(refuse_poison)
    results = run(dispatcher(recorder), [delivery(n) for n in range(1, 17)])
    assert results[7].status == "dead"
    assert {r.status for n, r in results.items() if n != 7} == {"delivered"}
    assert len(recorder.requests) <= 1 + 2 * 4  # log2(16) levels of halving


def test_a_429_pauses_the_destination_for_the_rest_of_the_round() -> None:
    recorder = Recorder(lambda request: httpx.Response(429, headers={"Retry-After": "30"}))
    due = [delivery(n) for n in range(1, 600)]  # three batches
    results = run(dispatcher(recorder), due)
    assert len(recorder.requests) == 1
    assert {r.status for r in results.values()} == {"pending"}
    attempted = [r for r in results.values() if r.attempt is not None]
    assert len(attempted) == batching.MAX_BATCH_MESSAGES
    assert min(r.next_attempt_at for r in results.values()) >= results[1].attempt.at + 29  # type: ignore[union-attr]


def test_messages_failing_together_retry_together() -> None:
    recorder = Recorder(lambda request: httpx.Response(503))
    results = run(dispatcher(recorder), [delivery(n, attempts=n % 3) for n in range(1, 30)])
    assert len({r.next_attempt_at for r in results.values()}) == 1


def test_retries_end_as_dead_after_the_last_try() -> None:
    recorder = Recorder(lambda request: httpx.Response(503))
    results = run(dispatcher(recorder), [delivery(1, attempts=11)])
    assert results[1].status == "dead" and "gave up after 12 tries" in (results[1].error or "")


def test_other_destinations_are_sent_one_by_one_unchanged() -> None:
    recorder = Recorder()
    due = [delivery(1, {"a": 1}, url="https://hooks.example.com/x"), delivery(2)]
    results = run(dispatcher(recorder), due)
    assert results[1].status == "delivered"
    assert [r.url.path for r in recorder.requests].count("/x") == 1
    assert json.loads(next(r for r in recorder.requests if r.url.path == "/x").content) == {"a": 1}


def test_each_transform_sends_with_its_own_configured_headers_and_url() -> None:
    recorder = Recorder()
    configured = {
        "resend": Configured({"Authorization": "Bearer re_1"}, "https://api.resend.com/emails"),
        "t": Configured({"Authorization": "Bearer other"}, ""),
    }
    d = dispatcher(recorder)
    d = Dispatcher(
        d.sender,
        write_key_for=lambda transform: None,
        configured_for=configured.__getitem__,
        limiter=RateLimiter(1000, burst=1000),
        dry_run=False,
    )
    due = [
        delivery(1, {"to": ["a@example.com"]}, "https://api.resend.com/emails", transform="resend"),
        delivery(2, {"to": ["b@example.com"]}, "https://api.resend.com/emails", transform="t"),
    ]
    results = run(d, due)
    assert results[1].status == "delivered"
    assert results[2].status == "blocked"  # api.resend.com is resend's url, not t's
    (sent,) = recorder.requests
    assert sent.headers["authorization"] == "Bearer re_1"


def test_dry_run_records_each_message_as_its_batch_call_and_sends_nothing() -> None:
    recorder = Recorder()
    results = run(dispatcher(recorder, dry_run=True, keys=False), [delivery(1), delivery(2)])
    assert recorder.requests == []
    for number in (1, 2):
        shown = results[number].request
        assert shown is not None and shown.url == "https://api.segment.io/v1/batch"
        # Its own message, enriched as it would be sent, not the other delivery's too.
        (message,) = shown.payload["batch"]
        assert message["userId"] == f"u{number}" and message["type"] == "track"
        assert message["messageId"].startswith("dodo-") and "sentAt" in shown.payload


@pytest.mark.parametrize("count", [1, 5])
def test_message_ids_are_stable_and_distinct(count: int) -> None:
    ids = {batching.message_id("msg_1", "t", "v1", i) for i in range(count)}
    assert len(ids) == count
    assert batching.message_id("msg_1", "t", "v1", 0) == batching.message_id("msg_1", "t", "v1", 0)
    assert batching.message_id("msg_1", "t", "v2", 0) != batching.message_id("msg_1", "t", "v1", 0)
    assert all(len(i) <= 100 for i in ids)


def test_rate_limiter_paces_requests() -> None:
    async def burst() -> float:
        limiter = RateLimiter(rate=20, burst=1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(6):
            await limiter.acquire("k")
        return loop.time() - started

    assert asyncio.run(burst()) >= 0.2


def test_batch_size_one_sends_one_request_per_message() -> None:
    recorder = Recorder()
    deliverer = Sender(
        segment_base_url="https://api.segment.io", transport=httpx.MockTransport(recorder)
    )
    unbatched = Dispatcher(
        deliverer,
        write_key_for=lambda t: "k",
        limiter=RateLimiter(1000, 1000),
        dry_run=False,
        batch_size=1,
    )
    results = run(unbatched, [delivery(n) for n in range(1, 6)])
    assert {r.status for r in results.values()} == {"delivered"}
    assert [len(b) for b in recorder.batches()] == [1, 1, 1, 1, 1]


def poisoned(n: int, **changes: Any) -> Delivery:
    """A stored delivery whose request was changed after it was stored (as by an older
    version, before the rules of the wire)."""
    original = delivery(n)
    assert original.request is not None
    return replace(original, request=replace(original.request, **changes))


def test_deliveries_that_cannot_be_sent_are_dead_and_the_rest_of_the_round_goes_out() -> None:
    """One stored request that cannot be prepared, encoded or sent is that delivery's
    outcome; it never stops the round (before: the whole round raised, after every restart)."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/explodes":
            raise ValueError("the transport broke on this one")
        return httpx.Response(200)

    recorder = Recorder(answer)
    hooks = "https://hooks.example.com"
    poisons = {
        101: poisoned(101, headers={"X-A": "a\r\nInjected: 1"}),
        102: poisoned(102, headers={"X-Name": "\ud83d Ada"}),
        103: poisoned(103, headers={"Content-Length": "3"}),
        104: poisoned(104, url=hooks + "/x?q=a\x01b", payload={"a": 1}),
        105: poisoned(105, url=hooks + "/explodes", payload={"a": 1}),
        106: replace(delivery(106), request=None),
    }
    good = [delivery(n) for n in range(1, 4)]
    latin1 = poisoned(107, url=hooks + "/latin1", headers={"X-Name": "José"}, payload={"a": 1})
    results = run(dispatcher(recorder), [*good, *poisons.values(), latin1])
    assert {n: results[n].status for n in (1, 2, 3, 107)} == dict.fromkeys(
        (1, 2, 3, 107), "delivered"
    )
    assert {n: results[n].status for n in poisons} == dict.fromkeys(poisons, "dead")
    errors = {n: results[n].error or "" for n in poisons}
    assert "header 'X-A' holds the character U+000D" in errors[101]
    assert "beyond Latin-1" in errors[102]
    assert "'Content-Length' is set by the HTTP client" in errors[103]
    assert "U+0001, which a URL cannot carry" in errors[104]
    assert errors[105] == "cannot be sent: ValueError: the transport broke on this one"
    assert "no request" in errors[106]
    assert all(results[n].next_attempt_at == 0.0 for n in poisons)  # never retried
    (sent,) = [r for r in recorder.requests if r.url.path == "/latin1"]
    assert (b"X-Name", b"Jos\xe9") in sent.headers.raw


def test_a_lone_surrogate_in_a_message_is_sent_as_the_replacement_character() -> None:
    recorder = Recorder()
    lone = delivery(1, {"userId": "\ud83d Ada", "event": "Payment Completed"})
    results = run(dispatcher(recorder), [lone, delivery(2)])
    assert {r.status for r in results.values()} == {"delivered"}
    (batch,) = recorder.batches()
    assert [m["userId"] for m in batch] == ["\ufffd Ada", "u2"]


def test_a_dry_run_records_only_segment_calls_that_have_no_write_key() -> None:
    """Without SEGMENT_WRITE_KEY, a transform with its own key still sends, and so do other
    destinations (their credentials are their own): a Resend-only setup is not a dry run."""
    recorder = Recorder()
    due = [
        delivery(1, transform="keyless"),
        delivery(2, transform="own"),
        delivery(3, url="https://hooks.example.com/x", transform="keyless"),
    ]
    d = dispatcher(recorder, dry_run=True)
    d._write_key_for = lambda transform: "own-key" if transform == "own" else None
    results = run(d, due)
    assert [results[n].status for n in (1, 2, 3)] == ["dry_run", "delivered", "delivered"]
    assert sorted(r.url.host for r in recorder.requests) == ["api.segment.io", "hooks.example.com"]


# --- the transform's delivery policy ------------------------------------------------------------


def run_with(d: Dispatcher, due: list[Delivery], policy: DeliveryPolicy) -> dict[int, Result]:
    return {r.delivery.id: r for r in asyncio.run(d.dispatch(due, policy))}


def test_a_retry_schedule_sets_when_each_retry_comes() -> None:
    failing = Recorder(lambda request: httpx.Response(503))
    policy = DeliveryPolicy(retry_schedule=(10.0, 60.0))
    hook = "https://hooks.example.com/x"
    first = run_with(dispatcher(failing), [delivery(1, url=hook)], policy)[1]
    assert first.status == "pending" and first.next_attempt_at - time.time() == pytest.approx(
        10, abs=1
    )
    later = run_with(dispatcher(failing), [delivery(1, url=hook, attempts=4)], policy)[1]
    assert later.next_attempt_at - time.time() == pytest.approx(60, abs=1)  # the last repeats


def test_max_attempts_ends_a_failing_delivery_as_dead() -> None:
    failing = Recorder(lambda request: httpx.Response(503))
    hook = "https://hooks.example.com/x"
    policy = DeliveryPolicy(max_attempts=3)
    assert (
        run_with(dispatcher(failing), [delivery(1, url=hook, attempts=1)], policy)[1].status
        == "pending"
    )
    gave_up = run_with(dispatcher(failing), [delivery(1, url=hook, attempts=2)], policy)[1]
    assert (
        gave_up.status == "dead"
        and gave_up.error
        and gave_up.error.startswith("gave up after 3 tries")
    )


def test_a_failed_attempt_says_whether_the_destination_failed() -> None:
    """What the circuit breaker counts: the destination failing, not the message refused."""
    hook = "https://hooks.example.com/x"
    for status, failed in ((503, True), (408, True), (429, False), (400, False), (404, False)):
        answer = Recorder(lambda request, status=status: httpx.Response(status))
        (result,) = asyncio.run(dispatcher(answer).dispatch([delivery(1, url=hook)]))
        assert result.destination_failed is failed, status


def test_the_headers_sent_are_kept_with_credentials_hidden() -> None:
    recorder = Recorder()
    resend = Configured({"Authorization": "Bearer re_123"}, "https://hooks.example.com/x")
    d = dispatcher(recorder, configured=resend)
    (result,) = asyncio.run(d.dispatch([delivery(1, url="https://hooks.example.com/x")]))
    assert result.sent_headers is not None
    assert result.sent_headers["Authorization"] == "[redacted]"
    assert result.sent_headers["Content-Type"] == "application/json"
    assert "re_123" not in json.dumps(result.sent_headers)
