"""Outages: Segment answers 503, then 429 with Retry-After, then times out; everything is
delivered once it recovers, with a bounded number of requests meanwhile."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest

from tests.integration.conftest import Server, example, server_env
from tests.standin import Reply, SegmentStandIn

pytestmark = pytest.mark.reliability


def test_outage_of_every_kind_is_ridden_out(workdir: Path, standin: SegmentStandIn) -> None:
    server = Server(workdir, server_env(standin, DODO_TRANSFORM_DELIVERY_TIMEOUT="0.5")).start()
    try:
        standin.default = Reply(503)
        for n in range(100):
            body = copy.deepcopy(example("payment.succeeded"))
            body["data"]["customer"]["customer_id"] = f"cus_{n}"
            assert server.post(body, webhook_id=f"msg_outage_{n}").status_code == 200
        time.sleep(2.0)
        standin.default = Reply(429, {"Retry-After": "1"})
        time.sleep(2.0)
        standin.default = Reply(200, delay=1.0)  # longer than the 0.5 s delivery timeout
        time.sleep(2.5)
        during = len(standin.received)
        standin.default = Reply(200)
        messages = standin.wait_for(200, timeout=90)
        assert during <= 60, f"{during} requests during a 6.5 s outage of 200 messages"
        ids = {(m["type"], m["userId"]): set() for m in messages}
        for message in messages:
            ids[(message["type"], message["userId"])].add(message["messageId"])
        assert len(ids) == 200
        assert all(len(message_ids) == 1 for message_ids in ids.values())
        server.wait_until(
            lambda: len(server.deliveries("delivered")) == 200, timeout=30, what="all delivered"
        )
        assert server.deliveries("dead") == []
    finally:
        server.stop()
