"""Destinations apart: Segment's latency while another destination stalls, and the worker's
memory while a destination answers 100 MB.

    python benchmarks/bench_destinations.py [--rate 20] [--seconds 15] [--rounds 2]

The real service runs the shipped seed transforms plus `hook.js`, a transform sending every
event to its own destination (a local stand-in). Each round starts a service and posts
payments at a steady --rate for --seconds, measuring each webhook's latency to the Segment
stand-in (its track message). The rounds alternate the hook's destination:

- *healthy*: it answers at once (the reference, measured in the same run);
- *stalled*: it never answers (every attempt ends at its 15 s deadline; the lane is paused);
- *slow*: it answers after 12 s.

Then *memory*: the hook's destination answers 400 with a 100 MB body to every request, and the
worker's resident set is sampled through 20 events, against the same run with a healthy one.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import latencies, paced, percentile, running_service, signed_requests

from dodo_transform.testing import (
    Answer,
    DestinationStandIn,
    SegmentStandIn,
    Server,
    process_memory,
)

HOOK = "function handler(webhook) { webhook.payload = { id: webhook.payload.data.payment_id }; return webhook; }"
ANSWERS = {
    "healthy": Answer(200),
    "stalled": Answer(200, delay=3600.0),
    "slow": Answer(200, delay=12.0),
}
HUNDRED_MB = Answer(400, body_bytes=100 * 1024 * 1024)


@dataclass(frozen=True)
class Latency:
    condition: str
    p50_ms: list[float]
    p99_ms: list[float]

    @property
    def median_p50(self) -> float:
        return statistics.median(self.p50_ms)

    @property
    def median_p99(self) -> float:
        return statistics.median(self.p99_ms)


@dataclass(frozen=True)
class Memory:
    healthy_peak_mb: float
    flooded_peak_mb: float
    settled_mb: float


@contextmanager
def service_beside(answer: Answer) -> Iterator[tuple[Server, SegmentStandIn, DestinationStandIn]]:
    with DestinationStandIn(answer).running() as hook:
        toml = f'[hook]\nurl = "{hook.url}/in"\nevents = ["payment.succeeded"]\n'
        extra = {"hook.js": HOOK, "transforms.toml": toml}
        with running_service(extra) as (server, standin):
            yield server, standin, hook


def one_round(condition: str, tag: str, rate: float, seconds: float) -> tuple[float, float]:
    with service_beside(ANSWERS[condition]) as (server, standin, _):
        url = f"{server.url}/webhooks/dodo"
        # Warm up first (the sandbox process starts, the handlers compile), as in service.
        warm = asyncio.run(paced(url, signed_requests(5, f"{tag}_warm"), 5))
        latencies(standin, warm, time.monotonic() + 60)
        sent = asyncio.run(paced(url, signed_requests(int(rate * seconds), tag), rate))
        values = latencies(standin, sent, time.monotonic() + 60)
    return percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000


def measure_latency(rate: float, seconds: float, rounds: int) -> list[Latency]:
    found: dict[str, tuple[list[float], list[float]]] = {c: ([], []) for c in ANSWERS}
    for n in range(rounds):
        for condition in ANSWERS:  # alternating: healthy, stalled, slow, healthy, ...
            p50, p99 = one_round(condition, f"msg_{condition}_{n}", rate, seconds)
            found[condition][0].append(p50)
            found[condition][1].append(p99)
            print(f"  round {n + 1} {condition:8} p50 {p50:7.0f} ms  p99 {p99:7.0f} ms", flush=True)
    return [Latency(c, p50s, p99s) for c, (p50s, p99s) in found.items()]


def peak_worker_memory(answer: Answer, events: int = 20) -> tuple[float, float]:
    """(worker RSS once settled, its peak while `events` go to a destination answering so)."""
    with service_beside(answer) as (server, _, hook):
        worker = server.wait_until(server.worker_pid, what="the worker")
        url = f"{server.url}/webhooks/dodo"
        warm = signed_requests(3, f"msg_warm_{id(answer)}")
        asyncio.run(paced(url, warm, 10))
        hook.wait_for(3, timeout=60)
        settled = process_memory(worker).rss_mb
        samples: list[float] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                samples.append(process_memory(worker).rss_mb)
                time.sleep(0.1)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            asyncio.run(paced(url, signed_requests(events, f"msg_mem_{id(answer)}"), 2))
            hook.wait_for(3 + events, timeout=120)
            time.sleep(1.0)
        finally:
            done.set()
            sampler.join()
        return settled, max(samples)


def measure_memory() -> Memory:
    settled, healthy = peak_worker_memory(ANSWERS["healthy"])
    _, flooded = peak_worker_memory(HUNDRED_MB)
    return Memory(healthy, flooded, settled)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="events/s in each round")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each condition")
    args = parser.parse_args()
    print(f"Segment latency at {args.rate:g} events/s, {args.seconds:g} s a round:")
    rows = measure_latency(args.rate, args.seconds, args.rounds)
    reference = rows[0]
    for row in rows:
        print(
            f"{row.condition:8} p50 {row.median_p50:7.0f} ms ({row.median_p50 / reference.median_p50:.2f}x)"
            f"  p99 {row.median_p99:7.0f} ms ({row.median_p99 / reference.median_p99:.2f}x)"
        )
    memory = measure_memory()
    print(
        f"worker RSS: settled {memory.settled_mb:.0f} MB; peak with a healthy destination"
        f" {memory.healthy_peak_mb:.0f} MB, with 100 MB answers {memory.flooded_peak_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()
