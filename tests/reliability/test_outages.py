"""Outages: Segment answers 503, then 429 with Retry-After, then times out; everything is
delivered once it recovers, with a bounded number of requests meanwhile."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest

from dodo_transform.testing import Reply, SegmentStandIn, Server, server_env
from tests.integration.conftest import example

pytestmark = pytest.mark.reliability


def phase(server: Server, standin: SegmentStandIn, reply: Reply, seconds: float) -> None:
    """Answer `reply` from now on; once a request has met it, let `seconds` pass."""
    seen = len(standin.received)
    standin.default = reply
    server.wait_until(
        lambda: any(r.status == reply.status for r in standin.received[seen:]),
        timeout=30,
        what=f"a request answered {reply.status}",
    )
    time.sleep(seconds)


def each_message(standin: SegmentStandIn) -> set[tuple[str, str]]:
    """(type, userId) of every message Segment accepted: a resend of one counts once."""
    return {(m["type"], m["userId"]) for m in standin.messages()}


@pytest.mark.timeout(360)  # two waits of up to 150 s below
def test_outage_of_every_kind_is_ridden_out(workdir: Path, standin: SegmentStandIn) -> None:
    server = Server(workdir, server_env(standin, DODO_TRANSFORM_DELIVERY_TIMEOUT="1")).start()
    try:
        standin.default = Reply(503)
        for n in range(100):
            body = copy.deepcopy(example("payment.succeeded"))
            body["data"]["customer"]["customer_id"] = f"cus_{n}"
            assert server.post(body, webhook_id=f"msg_outage_{n}").status_code == 200
        # The point is an outage that lasts (2 s of 503, 2 s of 429, 2.5 s of timeouts), so
        # these sleeps are the outage; each kind's time starts once a request has met it, so
        # none of them passes unseen on a slow machine.
        server.wait_until(lambda: standin.received, what="a request during the 503s")
        time.sleep(2.0)
        phase(server, standin, Reply(429, {"Retry-After": "1"}), 2.0)
        # Answers twice as slow as the 1 s timeout. A tighter timeout is met by a service that
        # only waits for a core while the suite's other workers use them: more failures, longer
        # pauses of the destination than the outage's own.
        phase(server, standin, Reply(200, delay=2.0), 2.5)
        during = len(standin.received)
        standin.default = Reply(200)
        # Counted once each: a batch accepted while answers were slower than the timeout is
        # sent again, so 200 messages arrive before every one of the 200 has.
        server.wait_until(lambda: len(each_message(standin)) >= 200, 150, "all 200 messages")
        assert during <= 60, f"{during} requests during a 6.5 s outage of 200 messages"
        messages = standin.messages()
        ids: dict[tuple[str, str], set[str]] = {key: set() for key in each_message(standin)}
        for message in messages:
            ids[(message["type"], message["userId"])].add(message["messageId"])
        assert len(ids) == 200
        assert all(len(message_ids) == 1 for message_ids in ids.values())
        # A message accepted while answers were slower than the timeout has reached Segment
        # but not been confirmed: its delivery is retried after its backoff, which after three
        # failed tries (a 503, a 429, a timeout) is 22.5-45 s. Then Segment's dedup drops the
        # copy, and the delivery is `delivered`.
        server.wait_until(
            lambda: len(server.deliveries("delivered")) == 200, timeout=150, what="all delivered"
        )
        assert server.deliveries("dead") == []
    finally:
        server.stop()
