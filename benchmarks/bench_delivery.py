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


def measure(mode: str, env: dict[str, str], events: int, rate: float, seconds: float) -> str:
    with running_service(**env) as (server, standin):
        url = f"{server.url}/webhooks/dodo"
        requests = signed_requests(events, f"msg_{mode}")
        started = time.monotonic()
        asyncio.run(flood(url, requests, 16))
        last = wait_for_messages(standin, events * MESSAGES_PER_EVENT, time.monotonic() + 120)
        throughput = events / (last - started)
        per_thousand = len(standin.received) / events * 1000
        count = int(rate * seconds)
        sent = asyncio.run(paced(url, signed_requests(count, f"msg_{mode}_paced"), rate))
        values = latencies(standin, sent, time.monotonic() + 60)
    return (
        f"{mode:22} {throughput:10.0f} {per_thousand:14.0f} "
        f"{percentile(values, 0.5) * 1000:9.0f} {percentile(values, 0.99) * 1000:9.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=600)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(f"{'mode':22} {'events/s':>10} {'requests/1000':>14} {'p50 ms':>9} {'p99 ms':>9}")
    print(measure("batched", {}, args.events, args.rate, args.seconds), flush=True)
    print(
        measure(
            "one request per msg",
            {"DODO_TRANSFORM_SEGMENT_BATCH_SIZE": "1"},
            args.events,
            args.rate,
            args.seconds,
        )
    )
    print(
        f"(events/s: from the first webhook sent to the last message received, "
        f"{args.events} events x {MESSAGES_PER_EVENT} messages; latency at {args.rate:g} events/s)"
    )


if __name__ == "__main__":
    main()
