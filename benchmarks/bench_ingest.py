"""Ingest: signed webhooks/s answered 2xx and durably stored, against the bare-FastAPI ceiling.

    python benchmarks/bench_ingest.py [--seconds 8] [--connections 32] [--rounds 3] [--burst 10]

wrk (a C load generator, so the client costs little) sends pre-signed, distinct
webhooks to (1) a bare FastAPI endpoint that only reads the body, the ceiling on
this machine, and (2) `dodo-transform serve` with the shipped transforms running,
where each 2xx means the event is committed to SQLite. Both run on uvicorn[standard]
(httptools, uvloop). Rounds alternate the two, each with webhooks signed afresh;
the figures are medians over rounds.

`--burst S` then floods a fresh service for S seconds and reports how long its worker
takes to transform and deliver what was accepted, and how fast ingest answers while
it does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import UvicornApp, ensure_wrk, percentile, running_service, signed_requests

from dodo_transform.testing import SegmentStandIn, Server, server_env

# Distinct webhooks signed per second of a run: above either endpoint's rate here, so no
# webhook repeats (a repeat is a dedupe hit, cheaper than a new event). Counted anyway.
SIGNED_PER_SECOND = 16_000


@dataclass(frozen=True)
class WrkRun:
    rate: float
    requests: int
    errors: int
    # The monotonic time of the first request: wrk reads its script's data before it starts
    # its clock (a second for a long burst), so a rate "from the burst's first request" starts
    # here, not at the call (wrk's own run time counted back from its exit).
    first_request: float


@dataclass(frozen=True)
class IngestResult:
    """Medians over rounds; `rounds` holds each round's (ceiling, ours) requests/s."""

    ours: float
    ceiling: float
    errors: int
    repeats: int
    connections: int
    rounds: list[tuple[float, float]]

    @property
    def ratio(self) -> float:
        return self.ours / self.ceiling


class Ceiling(UvicornApp):
    """bare_app.py on uvicorn with httptools and uvloop named, not left to `auto`."""

    def command(self) -> list[str]:
        return [*super().command(), "--http", "httptools", "--loop", "uvloop"]


def write_wrk_requests(requests: list[tuple[bytes, dict[str, str]]], script: Path) -> None:
    """A wrk Lua script cycling through pre-signed requests, read at start from a data file
    beside it (a script holding 100,000 requests as Lua constants is too big to load)."""
    data = script.with_suffix(".data")
    with data.open("wb") as out:
        for body, headers in requests:
            fields = [headers[name] for name in ("webhook-id", "webhook-timestamp")]
            fields += [headers["webhook-signature"], body.decode()]
            assert not any("\t" in field or "\0" in field for field in fields)
            out.write(("\t".join(fields) + "\0").encode())
    script.write_text(
        "\n".join(
            [
                "local formatted = {}",
                "init = function(args)",
                f"  local file = assert(io.open({json.dumps(str(data))}, 'rb'))",
                "  local blob = file:read('*a')",
                "  file:close()",
                "  local record = '([^\\t]*)\\t([^\\t]*)\\t([^\\t]*)\\t([^%z]*)%z'",
                "  for id, stamp, signature, body in string.gmatch(blob, record) do",
                "    local headers = {['webhook-id']=id, ['webhook-timestamp']=stamp,",
                "      ['webhook-signature']=signature, ['Content-Type']='application/json'}",
                "    formatted[#formatted + 1] = wrk.format('POST', '/webhooks/dodo', headers, body)",
                "  end",
                "end",
                "local i = 0",
                "request = function() i = i % #formatted + 1 return formatted[i] end",
            ]
        )
    )


def wrk(url: str, script: Path, seconds: float, connections: int) -> WrkRun:
    """One wrk run on a single thread."""
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 120,
    )
    rate = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    count = re.search(r"(\d+) requests in", done.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    assert rate and count, done.stdout
    requests, per_second = int(count.group(1)), float(rate.group(1))
    return WrkRun(
        per_second,
        requests,
        int(errors.group(1)) if errors else 0,
        time.monotonic() - requests / per_second,
    )


def one_round(tmp: Path, seconds: float, connections: int) -> tuple[WrkRun, WrkRun, int]:
    """The ceiling, then dodo-transform, on the same fresh webhooks; and how many there are."""
    script = tmp / "requests.lua"
    count = int(seconds * SIGNED_PER_SECOND)
    write_wrk_requests(signed_requests(count, f"msg_wrk_{time.time_ns()}"), script)
    with SegmentStandIn("wk_bench").running() as standin:
        bare = Ceiling(tmp, server_env(standin), "bare_app").start()
        try:
            ceiling = wrk(bare.url, script, seconds, connections)
        finally:
            bare.stop()
    with running_service() as (server, _):
        ours = wrk(server.url, script, seconds, connections)
    return ceiling, ours, count


def measure(
    seconds: float = 8.0, connections: int = 32, rounds: int = 3, report: bool = False
) -> IngestResult | None:
    if ensure_wrk() is None:
        return None
    runs = []
    repeats = 0
    with tempfile.TemporaryDirectory() as tmp:
        for number in range(rounds):
            ceiling, ours, distinct = one_round(Path(tmp), seconds, connections)
            runs.append((ceiling, ours))
            repeats += max(0, ours.requests - distinct)
            if report:
                print(
                    f"round {number + 1}: ceiling {ceiling.rate:7,.0f}/s, "
                    f"dodo-transform {ours.rate:7,.0f}/s ({ours.rate / ceiling.rate:.2f}), "
                    f"{ours.errors} non-2xx",
                    flush=True,
                )
    return IngestResult(
        ours=statistics.median(ours.rate for _, ours in runs),
        ceiling=statistics.median(ceiling.rate for ceiling, _ in runs),
        errors=sum(ours.errors + ceiling.errors for ceiling, ours in runs),
        repeats=repeats,
        connections=connections,
        rounds=[(ceiling.rate, ours.rate) for ceiling, ours in runs],
    )


# --- a burst, and the worker draining it ------------------------------------------------------


@dataclass(frozen=True)
class Burst:
    seconds: float
    accepted: int
    rate: float
    errors: int
    transformed_after: float  # seconds from the burst's end until no event waits
    delivered_after: float  # ... until no delivery waits either
    idle_p50_ms: float  # one webhook at a time, before the burst
    idle_p99_ms: float
    draining_p50_ms: float  # one webhook at a time, while the worker drains
    draining_p99_ms: float
    draining_sent: int


def measure_burst(seconds: float = 10.0, connections: int = 32) -> Burst | None:
    """Flood a fresh service for `seconds`, then time the worker's drain while sending one
    webhook at a time and timing each answer."""
    if ensure_wrk() is None:
        return None
    with tempfile.TemporaryDirectory() as tmp, running_service() as (server, standin):
        script = Path(tmp) / "burst.lua"
        count = int(seconds * SIGNED_PER_SECOND)
        tag = f"msg_burst_{time.time_ns()}"
        write_wrk_requests(signed_requests(count, tag), script)
        idle = asyncio.run(sequential_latencies(server, 2.0, "idle"))
        flood = wrk(server.url, script, seconds, connections)
        ended = time.monotonic()
        burst_users = tag.replace("msg", "cus", 1)
        accepted = flood.requests - flood.errors
        # The seed handlers make two messages of a payment: a track and an identify.
        arrivals = _Arrivals(standin, burst_users)
        drained = asyncio.run(drain(server, ended, arrivals, 2 * accepted))
    return Burst(
        seconds=seconds,
        accepted=flood.requests - flood.errors,
        rate=flood.rate,
        errors=flood.errors,
        transformed_after=drained.transformed - ended,
        delivered_after=drained.delivered - ended,
        idle_p50_ms=percentile(idle, 0.5) * 1000,
        idle_p99_ms=percentile(idle, 0.99) * 1000,
        draining_p50_ms=percentile(drained.latencies, 0.5) * 1000,
        draining_p99_ms=percentile(drained.latencies, 0.99) * 1000,
        draining_sent=len(drained.latencies),
    )


@dataclass
class Drained:
    transformed: float = 0.0
    delivered: float = 0.0
    latencies: list[float] | None = None


async def drain(
    server: Server, started: float, burst_messages: Callable[[], int], burst: int
) -> Drained:
    """Wait until the burst is transformed (no event waits but the trickle's one, polling
    `/metrics`) and delivered (its `burst` messages at the stand-in:
    the trickle's own deliveries, gathering into Segment batches, keep the delivery queue from
    ever being empty), sending webhooks one at a time meanwhile; when each happened, and the
    answers' latencies."""
    result = Drained(latencies=[])
    stop = asyncio.Event()

    async def watch() -> None:
        while True:
            depths = await asyncio.to_thread(server.queue_depths)
            now = time.monotonic()
            if not result.transformed and depths.get("events", 2) <= 1:
                result.transformed = now
            if result.transformed and await asyncio.to_thread(burst_messages) >= burst:
                result.delivered = now
                stop.set()
                return
            if now - started > 600:
                raise SystemExit(f"not drained after 600 s: {depths}")
            await asyncio.sleep(0.1)

    watcher = asyncio.create_task(watch())
    result.latencies = await sequential_latencies(server, 600.0, "drain", stop)
    await watcher
    return result


class _Arrivals:
    """Counts the messages for the burst's customers (`users`: their ids' prefix) at the
    stand-in, each request read once (its list is appended to, never rewritten)."""

    def __init__(self, standin: SegmentStandIn, users: str) -> None:
        self._standin, self._users = standin, users
        self._seen = 0
        self.count = 0

    def __call__(self) -> int:
        new = self._standin.received[self._seen :]
        self._seen += len(new)
        for request in new:
            if request.status < 300:
                self.count += sum(
                    1
                    for message in request.messages
                    if str(message.get("userId", "")).startswith(self._users)
                )
        return self.count


def _signed_as_needed(tag: str) -> Iterator[tuple[bytes, dict[str, str]]]:
    """Distinct signed webhooks, signed a thousand at a time as they are needed: a signature
    is refused 5 minutes after it was made, and a long drain would outlive ones made first."""
    while True:
        yield from signed_requests(1000, f"msg_{tag}_{time.time_ns()}")


async def sequential_latencies(
    server: Server, seconds: float, tag: str, stop: asyncio.Event | None = None
) -> list[float]:
    """Post signed webhooks one after another for `seconds` (or until `stop`); each one's
    time to a 2xx."""
    requests = _signed_as_needed(tag)
    latencies = []
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            body, headers = next(requests)
            sent = time.monotonic()
            response = await client.post("/webhooks/dodo", content=body, headers=headers)
            assert response.status_code == 200, response.text
            latencies.append(time.monotonic() - sent)
            await asyncio.sleep(0.005)  # 200/s at most: a trickle, beside the drain
    return sorted(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--burst", type=float, default=0.0, help="seconds of burst (0: none)")
    args = parser.parse_args()
    if ensure_wrk() is None:
        raise SystemExit("wrk is not installed and could not be installed")
    if args.rounds:
        result = measure(args.seconds, args.connections, args.rounds, report=True)
        assert result is not None
        print(f"bare FastAPI ceiling: {result.ceiling:7,.0f} requests/s (median)")
        print(
            f"dodo-transform:       {result.ours:7,.0f} signed webhooks/s stored "
            f"({result.ratio:.2f} of the ceiling; {result.errors} non-2xx, "
            f"{result.repeats} repeated webhooks)"
        )
    if args.burst:
        burst = measure_burst(args.burst, args.connections)
        assert burst is not None
        print(
            f"burst: {burst.accepted:,} webhooks in {burst.seconds:g} s ({burst.rate:,.0f}/s, "
            f"{burst.errors} non-2xx); transformed {burst.transformed_after:.1f} s and "
            f"delivered {burst.delivered_after:.1f} s after it ended; one webhook at a time "
            f"answered in p50 {burst.idle_p50_ms:.1f} / p99 {burst.idle_p99_ms:.1f} ms idle, "
            f"{burst.draining_p50_ms:.1f} / {burst.draining_p99_ms:.1f} ms while draining "
            f"({burst.draining_sent} sent)"
        )


if __name__ == "__main__":
    main()
