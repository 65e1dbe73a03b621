"""Ingest with tracing off and on: what exporting OpenTelemetry traces costs a webhook.

    python benchmarks/bench_tracing.py [--seconds 8] [--connections 32] [--rounds 3]

wrk sends pre-signed, distinct webhooks to `dodo-transform serve` (the shipped transforms
running) without `OTEL_EXPORTER_OTLP_ENDPOINT`, then with it pointing at a local OTLP/HTTP
receiver (`dodo_transform.testing.OtlpReceiver`, which decodes every export). Rounds alternate
the two on fresh webhooks; the figures are medians over rounds, and the ratio on/off.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_ingest import SIGNED_PER_SECOND, write_wrk_requests, wrk
from harness import ensure_wrk, running_service, signed_requests

from dodo_transform import tracing
from dodo_transform.testing import OtlpReceiver


@dataclass(frozen=True)
class TracingCost:
    off: float  # webhooks/s answered 2xx, median
    on: float
    spans: int  # spans the receiver got in the rounds with tracing on
    rounds: list[tuple[float, float]]


def one_round(tmp: Path, seconds: float, connections: int) -> tuple[float, float, int]:
    rates = []
    spans = 0
    for traced in (False, True):
        script = tmp / "requests.lua"
        write_wrk_requests(
            signed_requests(int(seconds * SIGNED_PER_SECOND), f"msg_otel_{time.time_ns()}"),
            script,
        )
        with OtlpReceiver().running() as receiver:
            env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url} if traced else {}
            with running_service(**env) as (server, _):
                rates.append(wrk(server.url, script, seconds, connections).rate)
            spans += len(receiver.spans()) if traced else 0
    return rates[0], rates[1], spans


def measure(seconds: float = 8.0, connections: int = 32, rounds: int = 3) -> TracingCost | None:
    if ensure_wrk() is None:
        return None
    runs = []
    spans = 0
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            off, on, received = one_round(Path(tmp), seconds, connections)
            runs.append((off, on))
            spans += received
    return TracingCost(
        off=statistics.median(off for off, _ in runs),
        on=statistics.median(on for _, on in runs),
        spans=spans,
        rounds=runs,
    )


RECEIVER = (
    "import sys, time\n"
    "from dodo_transform.testing import OtlpReceiver\n"
    "with OtlpReceiver().running() as receiver:\n"
    "    print(receiver.url, flush=True)\n"
    "    sys.stdin.read()\n"
)


def span_costs(spans: int = 5_000) -> dict[str, float]:
    """Microseconds a webhook's spans cost the thread recording them (ingest on the HTTP
    process's, transform and deliver on the worker's), tracing off and on, the SDK exporting
    in the background to a receiver in a process of its own: steadier than webhooks/s on a
    busy machine. The SDK's batch queue drops spans it cannot send in time; the cost is the
    same either way."""
    costs = {}
    receiver = subprocess.Popen(
        [sys.executable, "-c", RECEIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert receiver.stdout is not None
        url = receiver.stdout.readline().strip()
        for label, traced in (("off", tracing.NO_TRACING), ("on", tracing.tracing_for(url))):
            started = time.perf_counter()
            for n in range(spans):
                webhook_id = f"msg_{label}_{n}"
                now = time.time_ns()
                traced.ingested(webhook_id, "payment.succeeded", now)
                traced.transform_ran(
                    webhook_id, "payment.succeeded", "segment", "pending", now, now
                )
                traced.attempted(
                    webhook_id, "payment.succeeded", {"http.response.status_code": 200}, now, now
                )
                if n % 500 == 499:
                    time.sleep(0.05)  # a pace the exporter keeps up with, as live traffic
            costs[label] = (time.perf_counter() - started) / spans * 1e6 - 0.05e6 / 500
            traced.shutdown()
    finally:
        receiver.communicate("", timeout=30)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    costs = span_costs()
    print(
        f"a webhook's three spans cost {costs['off']:.2f} us off, {costs['on']:.1f} us on"
        " (recording thread)"
    )
    cost = measure(arguments.seconds, arguments.connections, arguments.rounds)
    if cost is None:
        print("wrk is not installed")
        return
    for number, (off, on) in enumerate(cost.rounds, 1):
        print(f"round {number}: tracing off {off:,.0f}/s, on {on:,.0f}/s ({on / off:.2f})")
    print(
        f"median: off {cost.off:,.0f} webhooks/s, on {cost.on:,.0f}/s, ratio"
        f" {cost.on / cost.off:.2f}; {cost.spans:,} spans received"
    )


if __name__ == "__main__":
    main()
