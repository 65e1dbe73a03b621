"""Poison transforms beside healthy ones: the healthy keep their pace, the service stays ready,
memory stays bounded, and each poison is reported with a clear error."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest

from tests.integration.conftest import Server, example, server_env
from tests.standin import SegmentStandIn

pytestmark = pytest.mark.reliability

POISONS = {
    "loop": "function handler(w) { while (true) {} }",
    "bomb": "function handler(w) { const a = []; while (true) a.push('x'.repeat(4096) + a.length); }",
    "recurse": "function handler(w) { function f(n) { return f(n + 1) + 1; } return f(0); }",
    "chatty": "function handler(w) { for (let i = 0; i < 1e6; i++) console.log('spam', i); return w; }",
    "huge": "function handler(w) { w.url = 'https://api.segment.io/v1/track';"
    " w.payload = {userId: 'u', event: 'Huge Thing', blob: 'x'.repeat(4 * 1024 * 1024)};"
    " return w; }",
    "thrower": "function handler(w) { throw new Error('always'); }",
}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_poison_transforms_do_not_hold_up_healthy_ones(
    workdir: Path, standin: SegmentStandIn
) -> None:
    for name, source in POISONS.items():
        (workdir / "transforms" / f"{name}.js").write_text(source)
    env = server_env(
        standin, DODO_TRANSFORM_HANDLER_TIME_LIMIT="0.5", DODO_TRANSFORM_HANDLER_MEMORY_MB="32"
    )
    server = Server(workdir, env).start()
    try:
        assert server.process is not None
        started = time.monotonic()
        for n in range(60):
            body = copy.deepcopy(example("payment.succeeded"))
            body["data"]["customer"]["customer_id"] = f"cus_{n}"
            assert server.post(body).status_code == 200
        messages = standin.wait_for(120, timeout=90)
        elapsed = time.monotonic() - started
        assert {m["userId"] for m in messages if m["type"] == "track"} == {
            f"cus_{n}" for n in range(60)
        }
        # Without quarantine 60 events x (loop + bomb) at 0.5 s each would take a minute.
        assert elapsed < 30, f"healthy deliveries took {elapsed:.1f} s"
        assert server.api("GET", "/readyz").status_code == 200
        assert rss_mb(server.process.pid) < 600
        failed = server.deliveries("failed")
        errors = {d["transform"]: d["error"] for d in failed}
        assert "time limit of 0.5 s exceeded" in errors["loop"] or "quarantined" in errors["loop"]
        assert any("memory limit" in d["error"] for d in failed if d["transform"] == "bomb")
        assert any("stack overflow" in d["error"] for d in failed if d["transform"] == "recurse")
        assert "Error: always" in errors["thrower"]
        assert any("quarantined" in d["error"] for d in failed if d["transform"] == "loop")
        invalid = server.deliveries("invalid")
        assert invalid and all("32 KB" in d["error"] for d in invalid if d["transform"] == "huge")
        chatty = [d for d in server.deliveries("skipped") if d["transform"] == "chatty"]
        assert chatty and sum(len(line[1]) for line in chatty[0]["logs"]) < 5000
    finally:
        server.stop()
