"""Delivery to Segment: batching against one request per message, in one run.

    python benchmarks/bench_delivery.py [--events 600] [--rate 50] [--seconds 10]

For each mode (batching on, and `DODO_TRANSFORM_SEGMENT_BATCH_SIZE=1`), the
real service is started with the shipped transforms and a local Segment
stand-in, --events signed webhooks are posted as fast as they are answered,
and the time until the stand-in has every message gives events/s from ingest
to Segment; the stand-in's request count gives requests per 1,000 events.
Then webhooks are posted at a fixed moderate --rate and p50/p99 latency from
sending each webhook to Segment receiving it is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    flood,
    latencies,
    paced,
    percentile,
    running_service,
    signed_requests,
    wait_for_messages,
)

MESSAGES_PER_EVENT = 2  # payment.succeeded: the track and the identify seed handler


@dataclass(frozen=True)
class DeliveryRow:
    mode: str
    events_per_second: float
    requests_per_thousand: float
    p50_ms: float
    p99_ms: float

    def line(self) -> str:
        return (
            f"{self.mode:22} {self.events_per_second:10.0f} "
            f"{self.requests_per_thousand:14.0f} {self.p50_ms:9.0f} {self.p99_ms:9.0f}"
        )


def measure_mode(
    mode: str, env: dict[str, str], events: int, rate: float, seconds: float
) -> DeliveryRow:
    tag = mode.split()[0]
    with running_service(**env) as (server, standin):
        url = f"{server.url}/webhooks/dodo"
        started = time.monotonic()
        asyncio.run(flood(url, signed_requests(events, f"msg_{tag}"), 16))
        last = wait_for_messages(standin, events * MESSAGES_PER_EVENT, time.monotonic() + 120)
        throughput = events / (last - started)
        per_thousand = len(standin.received) / events * 1000
        count = int(rate * seconds)
        sent = asyncio.run(paced(url, signed_requests(count, f"msg_{tag}_paced"), rate))
        values = latencies(standin, sent, time.monotonic() + 60)
    return DeliveryRow(
        mode,
        throughput,
        per_thousand,
        percentile(values, 0.5) * 1000,
        percentile(values, 0.99) * 1000,
    )


def measure(events: int = 600, rate: float = 50, seconds: float = 10) -> list[DeliveryRow]:
    return [
        measure_mode("batched", {}, events, rate, seconds),
        measure_mode(
            "one request per msg", {"DODO_TRANSFORM_SEGMENT_BATCH_SIZE": "1"}, events, rate, seconds
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=600)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(f"{'mode':22} {'events/s':>10} {'requests/1000':>14} {'p50 ms':>9} {'p99 ms':>9}")
    for row in measure(args.events, args.rate, args.seconds):
        print(row.line(), flush=True)
    print(
        f"(events/s: from the first webhook sent to the last message received, "
        f"{args.events} events x {MESSAGES_PER_EVENT} messages; latency at {args.rate:g} events/s)"
    )


if __name__ == "__main__":
    main()
