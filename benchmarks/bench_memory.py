"""Memory: resident set size of the service idle and under load, and per loaded transform.

    python benchmarks/bench_memory.py

RSS of the HTTP process and of its worker process (which holds the QuickJS
runtimes): idle after start, then at the end of a flood of signed webhooks;
per transform, the worker's RSS with 33 transforms loaded and run on events
against 3 (each runtime is made per transform and per transform thread).
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import SHIPPED, flood, running_service, signed_requests, wait_for_messages

from dodo_transform.testing import Server, process_memory


@dataclass(frozen=True)
class Memory:
    http_idle: float
    worker_idle: float
    http_loaded: float
    worker_loaded: float
    per_transform: float


def rss_mb(pid: int) -> float:
    return process_memory(pid).rss_mb


def worker_pid(server: Server) -> int:
    return server.wait_until(server.worker_pid, what="the worker process")


def extra_transforms(count: int) -> dict[str, str]:
    source = (SHIPPED / "segment_track_payments.js").read_text()
    return {
        f"copy_{n:02d}.js": source.replace("Payment Completed", f"Payment Completed {n}")
        for n in range(count)
    }


def measure(events: int = 1000) -> Memory:
    with running_service() as (server, standin):
        assert server.process is not None
        time.sleep(2.0)
        worker = worker_pid(server)
        http_idle, worker_idle = rss_mb(server.process.pid), rss_mb(worker)
        asyncio.run(flood(f"{server.url}/webhooks/dodo", signed_requests(events, "msg_mem"), 16))
        wait_for_messages(standin, events * 2, time.monotonic() + 120)
        http_loaded, worker_loaded = rss_mb(server.process.pid), rss_mb(worker)
    with running_service(extra=extra_transforms(30)) as (server, standin):
        assert server.process is not None
        asyncio.run(flood(f"{server.url}/webhooks/dodo", signed_requests(100, "msg_mem30"), 16))
        wait_for_messages(standin, 100 * 32, time.monotonic() + 120)
        worker_with_33 = rss_mb(worker_pid(server))
    with running_service() as (server, standin):
        assert server.process is not None
        asyncio.run(flood(f"{server.url}/webhooks/dodo", signed_requests(100, "msg_mem3"), 16))
        wait_for_messages(standin, 100 * 2, time.monotonic() + 120)
        worker_with_3 = rss_mb(worker_pid(server))
    return Memory(
        http_idle, worker_idle, http_loaded, worker_loaded, (worker_with_33 - worker_with_3) / 30
    )


def main() -> None:
    memory = measure()
    print(
        f"idle:        HTTP process {memory.http_idle:.0f} MB, worker {memory.worker_idle:.0f} MB"
    )
    print(
        f"after load:  HTTP process {memory.http_loaded:.0f} MB, worker {memory.worker_loaded:.0f} MB"
    )
    print(f"per loaded transform (worker): {memory.per_transform:.2f} MB")


if __name__ == "__main__":
    main()
