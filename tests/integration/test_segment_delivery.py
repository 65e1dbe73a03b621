"""Segment delivery under load and failure: batches, exactly-once messages, validation, outages.
The service runs in this process: these are about the pipeline, not its process."""

from __future__ import annotations

import copy
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from dodo_transform.testing import (
    InProcessServer,
    Reply,
    SegmentStandIn,
    Served,
    Server,
    server_settings,
)
from tests.integration.conftest import example

pytestmark = pytest.mark.integration


def payment_for(customer: str) -> dict[str, Any]:
    body = copy.deepcopy(example("payment.succeeded"))
    body["data"]["customer"]["customer_id"] = customer
    return body


def answered(standin: SegmentStandIn, status: int) -> bool:
    return any(request.status == status for request in standin.received)


def post_many(server: Served, bodies: list[dict[str, Any]], prefix: str) -> None:
    def post(item: tuple[int, dict[str, Any]]) -> int:
        index, body = item
        return server.post(body, webhook_id=f"{prefix}_{index}").status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(post, enumerate(bodies))) == {200}


def test_a_burst_arrives_in_batches_each_message_once(
    process_server: Server, standin: SegmentStandIn
) -> None:
    """`serve` itself: batches form while the worker process is busy and the HTTP process
    takes the burst, each on its own CPU (in one process the two take turns, and the batches
    come out smaller)."""
    server = process_server
    post_many(server, [payment_for(f"cus_{n}") for n in range(300)], "msg_burst")
    standin.wait_for(600, timeout=60)
    server.wait_idle()
    messages = standin.messages()
    assert len(messages) == 600
    assert len({m["messageId"] for m in messages}) == 600
    assert sorted(m["userId"] for m in messages if m["type"] == "track") == sorted(
        f"cus_{n}" for n in range(300)
    )
    assert len(standin.received) <= 60, f"{len(standin.received)} requests for 600 messages"


def test_messages_segment_would_drop_are_held_back(
    server: InProcessServer, standin: SegmentStandIn, workdir: Path
) -> None:
    with server.reloading("no_user"):
        (workdir / "transforms" / "no_user.js").write_text(
            "function handler(w) { w.url = 'https://api.segment.io/v1/track';"
            " w.payload = {event: 'Anonymous Thing'}; return w; }"
        )
    server.post(example("refund.succeeded"))
    invalid = server.wait_until(lambda: server.deliveries("invalid"), what="invalid")
    assert "neither userId nor anonymousId" in invalid[0]["error"]
    server.wait_idle()
    assert all(m.get("event") != "Anonymous Thing" for m in standin.messages())
    # The worker publishes its metrics to the HTTP process about once a second.
    server.wait_until(
        lambda: 'status="invalid"' in server.api("GET", "/metrics").text,
        what="the invalid message counted in /metrics",
    )


def test_a_refused_batch_loses_only_the_bad_message(
    server: InProcessServer, standin: SegmentStandIn
) -> None:
    standin.reject_message = lambda message: message.get("userId") == "cus_bad"
    bodies = [payment_for(f"cus_{n}") for n in range(40)] + [payment_for("cus_bad")]
    post_many(server, bodies, "msg_split")
    standin.wait_for(80, timeout=30)
    dead = server.wait_until(
        lambda: len(server.deliveries("dead")) == 2 and server.deliveries("dead"),
        what="the bad messages dead",
    )
    assert {d["webhook_id"] for d in dead} == {"msg_split_40"}
    server.wait_idle()
    assert len(standin.messages()) == 80
    assert len(server.deliveries("delivered")) == 80


@pytest.mark.timeout(240)  # see the wait for the last messages below
def test_outages_are_ridden_out_with_a_bounded_number_of_requests(
    server: InProcessServer, standin: SegmentStandIn
) -> None:
    standin.default = Reply(503)
    post_many(server, [payment_for(f"cus_{n}") for n in range(100)], "msg_outage")
    # The point is a 4 s outage (2 s of 503, then 2 s of 429), so these sleeps are the outage;
    # each phase starts once Segment is seen answering that way, so neither is vacuous.
    server.wait_until(lambda: answered(standin, 503), what="a 503 from the stand-in")
    time.sleep(2.0)
    standin.default = Reply(429, {"Retry-After": "1"})
    server.wait_until(lambda: answered(standin, 429), what="a 429 from the stand-in")
    time.sleep(2.0)
    during = len(standin.received)
    standin.default = Reply(200)
    # A message whose tries all fell inside the outage waits out its backoff (0.1 s base, x3 a
    # try: the sixth waits 24-73 s); on a busy machine the outage holds more of its tries.
    messages = standin.wait_for(200, timeout=150)
    assert len({m["messageId"] for m in messages}) == 200
    assert during <= 40, f"{during} requests during a 4 s outage"
    server.wait_until(lambda: len(server.deliveries("delivered")) == 200, what="all delivered")


def test_timeouts_are_retried(workdir: Path, standin: SegmentStandIn) -> None:
    with InProcessServer(workdir, **server_settings(standin, delivery_timeout=0.5)) as server:
        standin.script = [Reply(200, delay=1.5)]
        server.post(example("subscription.active"))
        messages = standin.wait_for(1, timeout=30)
        assert len(messages) >= 1
        server.wait_until(lambda: server.deliveries("delivered"), what="delivered after a timeout")
        attempts = server.api(
            "GET", f"/api/deliveries/{server.deliveries('delivered')[0]['id']}"
        ).json()
        assert attempts["attempt_log"][0]["error"] == "no complete answer within 0.5 s"
        assert len({m["messageId"] for m in standin.messages()}) == 1


def test_stand_in_request_threads_do_not_leak() -> None:
    assert threading.active_count() < 50
