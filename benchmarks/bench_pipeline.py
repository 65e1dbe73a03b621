"""The pipeline against ingest: a burst's end-to-end rate beside the ingest rate of the same run.

    python benchmarks/bench_pipeline.py [--seconds 3] [--connections 32] [--rounds 2]
                                        [--stores sqlite,postgres] [--cpus 0,1]

For each store, a fresh service runs the three seed handlers and delivers to a local Segment
stand-in; wrk (one thread, --connections connections, --seconds s) sends distinct, pre-signed
`payment.succeeded` webhooks (two Segment messages each: a track and an identify). Measured:
*ingest*, events accepted per second of the burst; *end to end*, events per second from the
burst's first request to the last message at the stand-in; their ratio; and the peak resident
set of the worker with its sandbox processes. Rounds alternate the stores; figures are
medians. PostgreSQL gets a fresh database on the local server each round.

With --cpus (`0`, or `0,1`), the service's processes (HTTP, worker, sandboxes) run on those
CPUs only, wrk and the stand-in anywhere: how the burst scales with the cores it is given.

Then *latency*: on SQLite, payments at a steady --latency-rate events/s for --latency-seconds,
each webhook's time until its track message reaches the stand-in, p50 and p99.

Then *memory with big payloads*: the seed handlers plus `big.js`, a handler returning a 4 MB
payload for every payment, sent to a local destination of its own; --big-events payments
posted at once (16 at a time), and the peak resident set of the worker with its sandbox
processes until every big request has arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import write_wrk_requests, wrk
from harness import (
    ensure_wrk,
    flood,
    latencies,
    paced,
    percentile,
    running_service,
    signed_requests,
    wait_for_messages,
)

from dodo_transform.testing import (
    Answer,
    DestinationStandIn,
    Server,
    descendants,
    hold_to_cpus,
    process_memory,
)

MESSAGES_PER_EVENT = 2
SIGNED_PER_SECOND = 16_000  # above ingest's rate here: no webhook repeats
POSTGRES_SERVER = "postgresql://root@127.0.0.1:5432/postgres"
BIG_PAYLOAD_HANDLER = (
    "function handler(webhook) {"
    " webhook.payload = { id: webhook.payload.data.payment_id, blob: 'x'.repeat(4 * 1024 * 1024) };"
    " return webhook; }"
)


@dataclass(frozen=True)
class Round:
    store: str
    ingest_per_second: float
    end_to_end_per_second: float
    peak_worker_mb: float
    stages: dict[str, float]  # seconds the worker spent in each part of its work
    events: int  # accepted in the burst

    def per_thousand(self, stage: str) -> float:
        """Seconds the worker spent in `stage` per 1,000 events of the burst."""
        return self.stages.get(stage, 0.0) / self.events * 1000

    @property
    def ratio(self) -> float:
        return self.end_to_end_per_second / self.ingest_per_second


@contextmanager
def fresh_database() -> Iterator[str]:
    name = f"dodo_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(POSTGRES_SERVER)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class PeakMemory:
    """Samples the worker and its sandbox processes' resident set in a thread; the peak sum."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            worker = self._server.worker_pid()
            if worker is None:
                continue
            total = 0.0
            for pid in [worker, *descendants(worker)]:
                try:
                    total += process_memory(pid).rss_mb
                except (OSError, KeyError):
                    continue  # gone meanwhile
            self.peak_mb = max(self.peak_mb, total)


def one_round(store: str, seconds: float, connections: int, cpus: set[int] | None = None) -> Round:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "burst.lua"
        count = int(seconds * SIGNED_PER_SECOND)
        write_wrk_requests(signed_requests(count, f"msg_pipe_{time.time_ns()}"), script)
        with database_for(store) as database, running_service(**database) as (server, standin):
            if cpus is not None:
                server.wait_until(server.worker_pid, what="the worker")
                assert server.process is not None
                hold_to_cpus(server.process.pid, cpus)
            with PeakMemory(server) as memory:
                burst = wrk(server.url, script, seconds, connections)
                accepted = burst.requests - burst.errors
                last = wait_for_messages(
                    standin, accepted * MESSAGES_PER_EVENT, time.monotonic() + 900
                )
            time.sleep(1.5)  # the worker writes its metrics every second
            return Round(
                store,
                burst.rate,
                accepted / (last - burst.first_request),
                memory.peak_mb,
                stages(server),
                accepted,
            )


def stages(server: Server) -> dict[str, float]:
    """Where the worker's time went (`dodo_pipeline_stage_seconds`), from `/metrics`."""
    text = server.api("GET", "/metrics").text
    return {
        sample.labels["stage"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "dodo_pipeline_stage_seconds"
        for sample in family.samples
        if sample.name.endswith("_total")
    }


@contextmanager
def database_for(store: str) -> Iterator[dict[str, str]]:
    if store == "sqlite":
        yield {}
        return
    with fresh_database() as url:
        yield {"DODO_TRANSFORM_DATABASE_URL": url}


def measure(
    stores: list[str],
    seconds: float = 3.0,
    connections: int = 32,
    rounds: int = 2,
    cpus: set[int] | None = None,
) -> dict[str, list[Round]]:
    if ensure_wrk() is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    found: dict[str, list[Round]] = {store: [] for store in stores}
    for number in range(rounds):
        for store in stores:
            result = one_round(store, seconds, connections, cpus)
            found[store].append(result)
            print(
                f"round {number + 1} {store:8} ingest {result.ingest_per_second:7,.0f}/s"
                f"  end to end {result.end_to_end_per_second:7,.0f}/s ({result.ratio:.2f})"
                f"  worker peak {result.peak_worker_mb:,.0f} MB",
                flush=True,
            )
    return found


def measure_latency(rate: float = 200.0, seconds: float = 10.0) -> tuple[float, float]:
    """p50 and p99 in ms, webhook to stand-in, at a steady `rate` (after a short warm-up)."""
    with running_service() as (server, standin):
        url = f"{server.url}/webhooks/dodo"
        warm = asyncio.run(paced(url, signed_requests(20, f"msg_warm_{time.time_ns()}"), 20))
        latencies(standin, warm, time.monotonic() + 60)
        sent = asyncio.run(
            paced(url, signed_requests(int(rate * seconds), f"msg_lat_{time.time_ns()}"), rate)
        )
        values = latencies(standin, sent, time.monotonic() + 120)
    return percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000


def measure_big_payloads(events: int = 100) -> float:
    """Peak MB of the worker with its sandbox processes while `events` payments, each made
    into a 4 MB request by `big.js`, go through the pipeline to a local destination."""
    with DestinationStandIn(Answer(200)).running() as destination:
        toml = f'[big]\nurl = "{destination.url}/in"\nevents = ["payment.succeeded"]\n'
        extra = {"big.js": BIG_PAYLOAD_HANDLER, "transforms.toml": toml}
        with running_service(extra) as (server, _):
            server.wait_until(server.worker_pid, what="the worker")
            with PeakMemory(server) as memory:
                url = f"{server.url}/webhooks/dodo"
                asyncio.run(flood(url, signed_requests(events, f"msg_big_{time.time_ns()}"), 16))
                destination.wait_for(events, timeout=600)
    return memory.peak_mb


def median(rounds: list[Round], field: str) -> float:
    return statistics.median(getattr(r, field) for r in rounds)


def cpu_list(text: str) -> set[int]:
    """`0,1` -> {0, 1}, for --cpus."""
    return {int(cpu) for cpu in text.split(",")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--latency-rate", type=float, default=200.0)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--big-events", type=int, default=100)
    parser.add_argument(
        "--cpus",
        type=cpu_list,
        help="run the service on these CPUs only, e.g. 0 or 0,1",
    )
    args = parser.parse_args()
    cpus = args.cpus
    if cpus is not None and not cpus <= os.sched_getaffinity(0):
        parser.error(
            f"--cpus {sorted(cpus)}: this machine gives us CPUs {sorted(os.sched_getaffinity(0))}"
        )
    found = measure(args.stores.split(","), args.seconds, args.connections, args.rounds, cpus)
    print("\n| store | ingest events/s | end to end events/s | ratio | worker peak RSS |")
    print("|---|---|---|---|---|")
    for store, rounds in found.items():
        print(
            f"| {store} | {median(rounds, 'ingest_per_second'):,.0f} |"
            f" {median(rounds, 'end_to_end_per_second'):,.0f} | {median(rounds, 'ratio'):.2f} |"
            f" {median(rounds, 'peak_worker_mb'):,.0f} MB |"
        )
    print("\nWhere the worker's time went (s per 1,000 events, median of rounds; parts overlap):\n")
    names = sorted({name for rounds in found.values() for r in rounds for name in r.stages})
    print("| part | " + " | ".join(found) + " |")
    print("|---|" + "---|" * len(found))
    for name in names:
        cells = [
            f"{statistics.median(r.per_thousand(name) for r in rounds):.2f}"
            for rounds in found.values()
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")

    p50, p99 = measure_latency(args.latency_rate, args.latency_seconds)
    print(
        f"\nAt a steady {args.latency_rate:g} events/s on SQLite, webhook to stand-in:"
        f" p50 {p50:.0f} ms, p99 {p99:.0f} ms"
    )
    peak = measure_big_payloads(args.big_events)
    print(
        f"\nWorker + sandboxes peak RSS, {args.big_events} events with 4 MB payloads: {peak:,.0f} MB"
    )


if __name__ == "__main__":
    main()
