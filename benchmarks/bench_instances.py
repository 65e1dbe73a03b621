"""Several instances on one PostgreSQL database, beside SQLite with one, in the same run.

    python benchmarks/bench_instances.py [--events 1500] [--threads 12] [--server URL]

Each setup gets the same pre-signed payments (two Segment messages each: an identify and a
track), posted by --threads keep-alive clients, spread over the setup's instances in turn, to
real `dodo-transform serve` processes delivering to one local Segment stand-in. Measured:
ingest events/s (first post to last 2xx), end-to-end events/s (first post to the last message
at the stand-in), and Segment HTTP requests per message. --server is a PostgreSQL server where
each PostgreSQL setup gets a fresh database (default: the local one, user root).
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg

from dodo_transform import signing
from dodo_transform.testing import SECRET, SegmentStandIn, Server, server_env, wait_until

ROOT = Path(__file__).resolve().parent.parent
SETUPS = (("SQLite", 1), ("PostgreSQL", 1), ("PostgreSQL", 2), ("PostgreSQL", 3))


@dataclass(frozen=True)
class Result:
    store: str
    instances: int
    ingest_per_second: float
    end_to_end_per_second: float
    requests_per_message: float


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    name = f"dodo_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(server)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def signed_posts(count: int) -> list[tuple[bytes, dict[str, str]]]:
    example = json.loads((ROOT / "examples" / "events" / "payment.succeeded.json").read_text())
    posts = []
    for n in range(count):
        body = copy.deepcopy(example)
        body["data"]["customer"]["customer_id"] = f"cus_bench_{n}"
        raw = json.dumps(body).encode()
        headers = signing.sign(SECRET, f"msg_bench_{n}_{uuid.uuid4().hex[:8]}", raw)
        posts.append((raw, headers | {"Content-Type": "application/json"}))
    return posts


def post_all(
    servers: list[Server], posts: list[tuple[bytes, dict[str, str]]], threads: int
) -> float:
    """Post everything, each to the next server in turn; the seconds until the last 2xx."""
    next_post = iter(enumerate(posts))
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            while True:
                with lock:
                    item = next(next_post, None)
                if item is None:
                    return
                n, (raw, headers) = item
                url = f"{servers[n % len(servers)].url}/webhooks/dodo"
                while http.post(url, content=raw, headers=headers).status_code != 200:
                    time.sleep(0.05)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for done in [pool.submit(client) for _ in range(threads)]:
            done.result()
    return time.perf_counter() - started


def run_setup(
    store: str, instances: int, events: int, threads: int, database: str | None
) -> Result:
    with tempfile.TemporaryDirectory() as tmp, SegmentStandIn().running() as standin:
        extra = {"DODO_TRANSFORM_DATABASE_URL": database} if database else {}
        servers = []
        for n in range(instances):
            workdir = Path(tmp) / f"instance-{n}"
            shutil.copytree(ROOT / "transforms", workdir / "transforms")
            servers.append(Server(workdir, server_env(standin, **extra)))
        with ThreadPoolExecutor(instances) as pool:
            list(pool.map(lambda server: server.start(timeout=60), servers))
        try:
            posts = signed_posts(events)
            started = time.perf_counter()
            ingest_seconds = post_all(servers, posts, threads)
            wait_until(lambda: len(standin.messages()) >= 2 * events, 600, "every message")
            total_seconds = time.perf_counter() - started
            messages = len(standin.messages())
            return Result(
                store,
                instances,
                events / ingest_seconds,
                events / total_seconds,
                len(standin.accepted()) / messages,
            )
        finally:
            for server in servers:
                server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=12)
    parser.add_argument("--server", default="postgresql://root@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    results = []
    for store, instances in SETUPS:
        if store == "SQLite":
            results.append(run_setup(store, instances, args.events, args.threads, None))
            continue
        with fresh_database(args.server) as database:
            results.append(run_setup(store, instances, args.events, args.threads, database))
        print(results[-1], file=sys.stderr, flush=True)
    print(f"{args.events} payments (two messages each), {args.threads} posting clients\n")
    print(
        "| store | instances | ingest events/s | end-to-end events/s | Segment requests/message |"
    )
    print("|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r.store} | {r.instances} | {r.ingest_per_second:,.0f} |"
            f" {r.end_to_end_per_second:,.0f} | {r.requests_per_message:.3f} |"
        )


if __name__ == "__main__":
    main()
