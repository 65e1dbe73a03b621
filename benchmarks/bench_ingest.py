"""Ingest rate and ingest-to-Segment latency of the real service, against a local Segment stand-in.

    python benchmarks/bench_ingest.py [--events 2000] [--concurrency 16] [--rate 100]

Starts `dodo-transform serve` as its own process with the shipped transforms,
then (1) posts --events pre-signed webhooks from --concurrency connections as
fast as they are answered and reports webhooks/s answered 2xx (each stored
durably before its answer), and (2) posts at a fixed moderate --rate and
reports p50/p99 latency from sending the webhook to the stand-in receiving its
message. Bounded: every phase has a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dodo_transform import signing  # noqa: E402
from tests.integration.conftest import SECRET, Server, server_env  # noqa: E402
from tests.standin import SegmentStandIn  # noqa: E402

EXAMPLE = json.loads((ROOT / "examples" / "events" / "payment.succeeded.json").read_text())


def signed_requests(count: int, prefix: str) -> list[tuple[bytes, dict[str, str]]]:
    requests = []
    for n in range(count):
        body = copy.deepcopy(EXAMPLE)
        body["data"]["customer"]["customer_id"] = f"{prefix}_{n}".replace("msg", "cus", 1)
        raw = json.dumps(body).encode()
        headers = signing.sign(SECRET, f"{prefix}_{n}", raw) | {"Content-Type": "application/json"}
        requests.append((raw, headers))
    return requests


async def flood(url: str, requests: list[tuple[bytes, dict[str, str]]], concurrency: int) -> float:
    queue = list(reversed(requests))
    ok = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal ok
        while queue:
            body, headers = queue.pop()
            response = await client.post(url, content=body, headers=headers)
            ok += response.status_code == 200

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    assert ok == len(requests), f"only {ok} of {len(requests)} answered 200"
    return len(requests) / elapsed


async def paced(
    url: str, requests: list[tuple[bytes, dict[str, str]]], rate: float
) -> dict[str, float]:
    sent_at: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=30) as client:
        started = time.monotonic()
        tasks = []
        for index, (body, headers) in enumerate(requests):
            await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
            sent_at[headers["webhook-id"]] = time.monotonic()
            tasks.append(asyncio.create_task(client.post(url, content=body, headers=headers)))
        await asyncio.gather(*tasks)
    return sent_at


def latencies(standin: SegmentStandIn, sent_at: dict[str, float], deadline: float) -> list[float]:
    wanted = {key.replace("msg", "cus", 1): key for key in sent_at}
    while time.monotonic() < deadline:
        arrived = {}
        for request in standin.accepted():
            for message in request.messages:
                if message["type"] == "track" and message["userId"] in wanted:
                    arrived.setdefault(message["userId"], request.at)
        if len(arrived) == len(wanted):
            return sorted(arrived[user] - sent_at[wanted[user]] for user in wanted)
        time.sleep(0.1)
    raise SystemExit(f"only {len(arrived)} of {len(wanted)} messages arrived in time")


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(fraction * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the paced phase")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, SegmentStandIn("wk_bench").running() as standin:
        workdir = Path(tmp)
        (workdir / "transforms").mkdir()
        for path in (ROOT / "transforms").glob("*.js"):
            (workdir / "transforms" / path.name).write_text(path.read_text())
        env = server_env(standin, SEGMENT_WRITE_KEY="wk_bench")
        server = Server(workdir, env).start()
        try:
            url = f"{server.url}/webhooks/dodo"
            rate = asyncio.run(
                flood(url, signed_requests(args.events, "msg_flood"), args.concurrency)
            )
            print(
                f"ingest: {rate:.0f} signed webhooks/s answered 200 and stored "
                f"({args.events} events, {args.concurrency} connections)"
            )
            count = int(args.rate * args.seconds)
            time.sleep(2.0)  # let the flood's deliveries drain first
            sent = asyncio.run(paced(url, signed_requests(count, "msg_paced"), args.rate))
            values = latencies(standin, sent, time.monotonic() + 60)
            print(
                f"ingest-to-Segment latency at {args.rate:.0f} events/s ({count} events): "
                f"p50 {percentile(values, 0.5) * 1000:.0f} ms, "
                f"p99 {percentile(values, 0.99) * 1000:.0f} ms, "
                f"mean {statistics.mean(values) * 1000:.0f} ms"
            )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
