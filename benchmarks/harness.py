"""Shared parts of the service benchmarks: the real server process with a Segment stand-in,
pre-signed webhooks, a flood and a paced sender, and latency from webhook to Segment."""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The handlers transforms/ ships, as the tests keep them: transforms/ itself is the user's to
# change, and a benchmark of an edited copy would not compare with the published figures.
SHIPPED = ROOT / "tests" / "fixtures" / "transforms"

from dodo_transform import signing  # noqa: E402
from dodo_transform.testing import SECRET, SegmentStandIn, Server, server_env  # noqa: E402

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


@dataclass(frozen=True)
class Flow:
    """A flood's events/s to Segment and requests per 1,000 events; a paced run's latency."""

    events_per_second: float
    requests_per_thousand: float
    p50_ms: float
    p99_ms: float


def measure_flow(
    server: Server,
    standin: SegmentStandIn,
    tag: str,
    events: int,
    rate: float,
    seconds: float,
    messages_per_event: int = 2,
) -> Flow:
    """Flood `events` payments and time them to the stand-in; then send at `rate` for
    `seconds` and measure each webhook's latency to Segment."""
    url = f"{server.url}/webhooks/dodo"
    started = time.monotonic()
    asyncio.run(flood(url, signed_requests(events, f"msg_{tag}_flood"), 16))
    last = wait_for_messages(standin, events * messages_per_event, time.monotonic() + 120)
    requests = len(standin.received)
    sent = asyncio.run(paced(url, signed_requests(int(rate * seconds), f"msg_{tag}_paced"), rate))
    values = latencies(standin, sent, time.monotonic() + 60)
    return Flow(
        events / (last - started),
        requests / events * 1000,
        percentile(values, 0.5) * 1000,
        percentile(values, 0.99) * 1000,
    )


def flow_arguments(description: str) -> argparse.Namespace:
    """--events, --rate and --seconds, as the flow benchmarks take them."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--events", type=int, default=600, help="payments in the flood")
    parser.add_argument("--rate", type=float, default=50.0, help="events/s in the paced run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the paced run")
    return parser.parse_args()


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(fraction * len(values)))]


class UvicornApp(Server):
    """A reference app from this folder, served by uvicorn in its own process."""

    def __init__(self, workdir: Path, env: dict[str, str], module: str) -> None:
        super().__init__(workdir, env)
        self.module = module
        self.ready_path = "/healthz"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "uvicorn",
            f"{self.module}:app",
            "--app-dir",
            str(Path(__file__).parent),
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]


def ensure_wrk() -> str | None:
    """wrk (a load generator in C, from Debian's packages), installed if missing and possible."""
    if shutil.which("wrk") is None and shutil.which("apt-get") is not None:
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True, check=False)
    return shutil.which("wrk")


def write_wrk_script(requests: list[tuple[bytes, dict[str, str]]], path: Path) -> None:
    """A wrk Lua script that cycles through pre-signed requests, each sent once per cycle."""
    lines = ["local reqs = {}"]
    for index, (body, headers) in enumerate(requests, start=1):
        fields = ", ".join(f"[{json.dumps(k)}]={json.dumps(v)}" for k, v in headers.items())
        lines.append(f"reqs[{index}] = {{{{{fields}}}, {json.dumps(body.decode())}}}")
    lines += [
        "local formatted = {}",
        "init = function(args)",
        "  for k, r in ipairs(reqs) do",
        "    formatted[k] = wrk.format('POST', '/webhooks/dodo', r[1], r[2])",
        "  end",
        "end",
        "local i = 0",
        "request = function() i = i % #formatted + 1 return formatted[i] end",
    ]
    path.write_text("\n".join(lines))


def wrk(url: str, script: Path, seconds: float, connections: int = 16) -> tuple[float, int]:
    """(requests/s, non-2xx answers) from one wrk run on a single thread."""
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", done.stdout).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    return rate, int(errors.group(1)) if errors else 0


@contextmanager
def running_service(
    extra: dict[str, str] | None = None, **env: str
) -> Iterator[tuple[Server, SegmentStandIn]]:
    """The shipped transforms (plus `extra` files) served by `dodo-transform serve`,
    delivering to a stand-in."""
    with tempfile.TemporaryDirectory() as tmp, SegmentStandIn("wk_bench").running() as standin:
        workdir = Path(tmp)
        (workdir / "transforms").mkdir()
        for path in SHIPPED.glob("*.js"):
            (workdir / "transforms" / path.name).write_text(path.read_text())
        for name, source in (extra or {}).items():
            (workdir / "transforms" / name).write_text(source)
        server = Server(workdir, server_env(standin, SEGMENT_WRITE_KEY="wk_bench", **env)).start()
        try:
            yield server, standin
        finally:
            server.stop()


def wait_for_messages(standin: SegmentStandIn, count: int, deadline: float) -> float:
    """Wait until the stand-in accepted `count` messages; the monotonic time of the last.
    Each request is read once (re-reading them all at every look would cost the benchmark
    more CPU than the service it measures)."""
    seen, messages, last = 0, 0, 0.0
    while time.monotonic() < deadline:
        new = standin.received[seen:]  # appended to, never rewritten
        seen += len(new)
        for request in new:
            if request.status < 300:
                messages += len(request.messages)
                last = max(last, request.at)
        if messages >= count:
            return last
        time.sleep(0.05)
    raise SystemExit(f"the stand-in did not get {count} messages in time")
