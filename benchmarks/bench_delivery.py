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

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Flow, flow_arguments, measure_flow, running_service

MESSAGES_PER_EVENT = 2  # payment.succeeded: the track and the identify seed handler


def measure_mode(
    mode: str, env: dict[str, str], events: int, rate: float, seconds: float
) -> tuple[str, Flow]:
    with running_service(**env) as (server, standin):
        return mode, measure_flow(server, standin, mode.split()[0], events, rate, seconds)


def measure(events: int = 600, rate: float = 50, seconds: float = 10) -> list[tuple[str, Flow]]:
    return [
        measure_mode("batched", {}, events, rate, seconds),
        measure_mode(
            "one request per msg", {"DODO_TRANSFORM_SEGMENT_BATCH_SIZE": "1"}, events, rate, seconds
        ),
    ]


def main() -> None:
    args = flow_arguments(__doc__.splitlines()[0])
    print(f"{'mode':22} {'events/s':>10} {'requests/1000':>14} {'p50 ms':>9} {'p99 ms':>9}")
    for mode, flow in measure(args.events, args.rate, args.seconds):
        print(
            f"{mode:22} {flow.events_per_second:10.0f} {flow.requests_per_thousand:14.0f} "
            f"{flow.p50_ms:9.0f} {flow.p99_ms:9.0f}",
            flush=True,
        )
    print(
        f"(events/s: from the first webhook sent to the last message received, "
        f"{args.events} events x {MESSAGES_PER_EVENT} messages; latency at {args.rate:g} events/s)"
    )


if __name__ == "__main__":
    main()
