"""A handler stuck inside one long built-in call, which QuickJS's interrupt never sees, is
stopped by the sandbox processes' backstop; the seed handlers keep delivering meanwhile."""

from __future__ import annotations

import time
from pathlib import Path

from dodo_transform.testing import SegmentStandIn, Server, server_env
from tests.conftest import sample

# `join` over 2^32 holes runs in C for minutes: only killing its process stops it.
STUCK = """function handler(webhook) {
  if (webhook.eventType !== "payment.succeeded") return webhook;
  Array.prototype.join.call({ length: 2 ** 32 }, "");
  return webhook;
}
"""


def test_a_handler_stuck_in_a_builtin_is_stopped_and_healthy_ones_deliver(
    workdir: Path, standin: SegmentStandIn
) -> None:
    (workdir / "transforms" / "stuck.js").write_text(STUCK)
    env = server_env(standin, DODO_TRANSFORM_HANDLER_TIME_LIMIT="0.5")
    # `serve` itself: its worker process takes the four payments in one round, as they arrive
    # faster than it polls. (In one process the pipeline is woken by each, and a version's
    # limit hits are counted per round by the sandbox processes, across rounds by the stage:
    # split rounds can make four hits before the quarantine shows.)
    server = Server(workdir, env).start()
    try:
        for n in range(4):
            body = sample("payment.succeeded")
            body["data"]["customer"]["customer_id"] = f"cus_stuck_{n}"
            assert server.post(body, webhook_id=f"msg_stuck_{n}").status_code == 200
        # Each payment makes one track and one identify from the seed handlers.
        messages = standin.wait_for(8, timeout=60)
        assert {m["userId"] for m in messages} == {f"cus_stuck_{n}" for n in range(4)}
        failed = server.wait_until(
            lambda: len(server.deliveries("failed")) == 4 and server.deliveries("failed"),
            what="four failed deliveries of the stuck transform",
        )
        errors = sorted(d["error"] for d in failed)
        assert sum("exceeded inside a built-in call" in e for e in errors) >= 1
        assert all(d["transform"] == "stuck" for d in failed)
        # After three limit hits in a row the version is not run again.
        assert any("not run" in e or "quarantined" in e for e in errors)
        assert server.api("GET", "/readyz").status_code == 200
        started = time.monotonic()
    finally:
        server.stop()
    assert time.monotonic() - started < 15
