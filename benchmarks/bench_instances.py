"""Several instances on one PostgreSQL database against one, in alternating rounds.

    python benchmarks/bench_instances.py [--instances 1,3] [--seconds 3] [--connections 32]
                                         [--rounds 3]

Each round starts that many `dodo-transform serve` processes on a fresh database of the
local PostgreSQL server, running the seed handlers and delivering to one Segment stand-in,
then bursts distinct pre-signed `payment.succeeded` webhooks at them (one wrk per instance,
the connections shared out, for --seconds s). Measured per round: *ingest*, events accepted
per second of the burst; *end to end*, events per second from the burst's start to the last
message at the stand-in; and what it cost: CPU seconds per 1,000 events of the instances'
processes (HTTP, worker and its sandboxes) and of the PostgreSQL backends serving the
database, and the connections each instance holds. Rounds alternate the setups (A B A B);
figures are medians. This is the cost model of `docs/scaling.md`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import write_wrk_requests, wrk
from bench_pipeline import MESSAGES_PER_EVENT, SIGNED_PER_SECOND, fresh_database
from harness import SHIPPED, ensure_wrk, signed_requests, wait_for_messages

from dodo_transform.testing import SegmentStandIn, Server, descendants, server_env

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Round:
    instances: int
    ingest_per_second: float
    end_to_end_per_second: float
    instance_cpu_ms_per_event: float  # all the instances' processes, per event
    database_cpu_ms_per_event: float  # the PostgreSQL backends serving the database
    connections_per_instance: float  # the most seen at once, per instance


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


class Backends:
    """Samples the PostgreSQL backends connected to one database while a round runs: their
    pids (for their CPU) and how many there are at most."""

    def __init__(self, database_url: str) -> None:
        self._name = database_url.rsplit("/", 1)[1]
        self._admin = psycopg.connect(database_url, autocommit=True)
        self.pids: set[int] = set()
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Backends:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._admin.close()

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            rows = self._admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self._name,),
            ).fetchall()
            self.pids.update(row[0] for row in rows)
            self.most = max(self.most, len(rows))


def processes(servers: list[Server]) -> list[int]:
    """Every process of the instances: each server, its worker and sandbox processes."""
    pids = []
    for server in servers:
        assert server.process is not None
        pids += [server.process.pid, *descendants(server.process.pid)]
    return pids


def one_round(instances: int, seconds: float, connections: int) -> Round:
    with (
        tempfile.TemporaryDirectory() as tmp,
        fresh_database() as database,
        SegmentStandIn("wk_bench").running() as standin,
    ):
        scripts = []
        for n in range(instances):
            count = int(seconds * SIGNED_PER_SECOND / instances)
            script = Path(tmp) / f"burst-{n}.lua"
            write_wrk_requests(signed_requests(count, f"msg_inst{n}_{time.time_ns()}"), script)
            scripts.append(script)
        env = server_env(
            standin, SEGMENT_WRITE_KEY="wk_bench", DODO_TRANSFORM_DATABASE_URL=database
        )
        servers = []
        for n in range(instances):
            workdir = Path(tmp) / f"instance-{n}"
            shutil.copytree(SHIPPED, workdir / "transforms")
            servers.append(Server(workdir, env))
        with ThreadPoolExecutor(instances) as pool:
            list(pool.map(lambda server: server.start(timeout=60), servers))
        try:
            for server in servers:
                server.wait_until(server.worker_pid, what="worker")
            time.sleep(1)  # sandbox processes started, first heartbeats written
            with Backends(database) as backends:
                pids = processes(servers)
                cpu_before = sum(cpu_seconds(pid) for pid in pids)
                database_before = backends.cpu()
                with ThreadPoolExecutor(instances) as pool:
                    bursts = list(
                        pool.map(
                            lambda pair: wrk(
                                pair[0].url, pair[1], seconds, max(1, connections // instances)
                            ),
                            zip(servers, scripts, strict=True),
                        )
                    )
                accepted = sum(burst.requests - burst.errors for burst in bursts)
                last = wait_for_messages(
                    standin, accepted * MESSAGES_PER_EVENT, time.monotonic() + 900
                )
                instance_cpu = sum(cpu_seconds(pid) for pid in processes(servers)) - cpu_before
                database_cpu = backends.cpu() - database_before
                return Round(
                    instances,
                    sum(burst.rate for burst in bursts),
                    accepted / (last - min(burst.first_request for burst in bursts)),
                    instance_cpu / accepted * 1000,
                    database_cpu / accepted * 1000,
                    backends.most / instances,
                )
        finally:
            for server in servers:
                server.stop()


def measure(
    setups: list[int], seconds: float = 3.0, connections: int = 32, rounds: int = 3
) -> dict[int, list[Round]]:
    if ensure_wrk() is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    found: dict[int, list[Round]] = {instances: [] for instances in setups}
    for number in range(rounds):
        for instances in setups:
            result = one_round(instances, seconds, connections)
            found[instances].append(result)
            print(
                f"round {number + 1}, {instances} instance(s): ingest"
                f" {result.ingest_per_second:7,.0f}/s  end to end"
                f" {result.end_to_end_per_second:7,.0f}/s  CPU/1,000 events: instances"
                f" {result.instance_cpu_ms_per_event * 1000:,.0f} ms, database"
                f" {result.database_cpu_ms_per_event * 1000:,.0f} ms",
                flush=True,
            )
    return found


def median(rounds: list[Round], field: str) -> float:
    return statistics.median(getattr(r, field) for r in rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", default="1,3")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    setups = [int(n) for n in args.instances.split(",")]
    found = measure(setups, args.seconds, args.connections, args.rounds)
    one = median(found[setups[0]], "end_to_end_per_second")
    print(
        "\n| instances | ingest events/s | end to end events/s | ratio to "
        f"{setups[0]} | instances' CPU per 1,000 events | PostgreSQL's CPU per 1,000 events"
        " | connections per instance |"
    )
    print("|---|---|---|---|---|---|---|")
    for instances, rounds in found.items():
        end_to_end = median(rounds, "end_to_end_per_second")
        print(
            f"| {instances} | {median(rounds, 'ingest_per_second'):,.0f} | {end_to_end:,.0f} |"
            f" {end_to_end / one:.2f} |"
            f" {median(rounds, 'instance_cpu_ms_per_event') * 1000:,.0f} ms |"
            f" {median(rounds, 'database_cpu_ms_per_event') * 1000:,.0f} ms |"
            f" {median(rounds, 'connections_per_instance'):.0f} |"
        )


if __name__ == "__main__":
    main()
