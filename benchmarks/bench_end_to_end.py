"""End to end: dodo-transform against what a user would write by hand, and what each loses.

    python benchmarks/bench_end_to_end.py [--events 600] [--rate 50] [--seconds 10]

The reference is `handwritten_app.py`: FastAPI, standardwebhooks, and Segment's
own Python SDK doing the seed handlers' mapping in Python. Both get the same
pre-signed webhooks and deliver to the same local Segment stand-in. Measured:
events/s from the first webhook to the last Segment message (a flood of
--events payments, two messages each), p50/p99 webhook-to-Segment latency at a
fixed --rate, and how many acknowledged events never reach Segment when the
server is SIGKILLed mid-stream and restarted.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import UvicornApp, flow_arguments, measure_flow, running_service, signed_requests

from dodo_transform.testing import SegmentStandIn, Server, server_env


@dataclass(frozen=True)
class EndToEnd:
    name: str
    events_per_second: float
    p50_ms: float
    p99_ms: float
    acknowledged: int
    lost: int


@contextmanager
def handwritten() -> Iterator[tuple[Server, SegmentStandIn]]:
    with tempfile.TemporaryDirectory() as tmp, SegmentStandIn("wk_bench").running() as standin:
        app = UvicornApp(
            Path(tmp), server_env(standin, SEGMENT_WRITE_KEY="wk_bench"), "handwritten_app"
        ).start()
        try:
            yield app, standin
        finally:
            app.stop()


def loss_under_sigkill(server: Server, standin: SegmentStandIn, name: str) -> tuple[int, int]:
    """Post 300 webhooks at 100/s, SIGKILL the server after 1.5 s, restart it; return
    (acknowledged, acknowledged but never delivered)."""
    import httpx

    requests = signed_requests(300, f"msg_{name}_kill")
    acknowledged: list[str] = []

    def send() -> None:
        with httpx.Client(timeout=5) as client:
            for body, headers in requests:
                try:
                    if (
                        client.post(
                            f"{server.url}/webhooks/dodo", content=body, headers=headers
                        ).status_code
                        == 200
                    ):
                        acknowledged.append(headers["webhook-id"])
                except httpx.HTTPError:
                    pass  # the server is down: a real sender retries; we only count the 2xx
                time.sleep(0.01)

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(1.5)
    server.kill()
    server.start()
    sender.join()
    wanted = {webhook_id.replace("msg", "cus", 1) for webhook_id in acknowledged}
    deadline = time.monotonic() + 30
    arrived: set[str] = set()
    while time.monotonic() < deadline:
        arrived = {m["userId"] for m in standin.messages() if m["type"] == "track"} & wanted
        if arrived == wanted:
            break
        time.sleep(0.2)
    return len(acknowledged), len(wanted - arrived)


def measure(events: int = 600, rate: float = 50, seconds: float = 10) -> list[EndToEnd]:
    rows = []
    setups: list[tuple[str, Callable[[], contextmanager]]] = [  # type: ignore[type-arg]
        ("dodo-transform", running_service),
        ("hand-written + Segment SDK", handwritten),
    ]
    for name, setup in setups:
        tag = name.split()[0].replace("-", "")
        with setup() as (server, standin):
            flow = measure_flow(server, standin, tag, events, rate, seconds)
            acknowledged, lost = loss_under_sigkill(server, standin, tag)
        rows.append(
            EndToEnd(name, flow.events_per_second, flow.p50_ms, flow.p99_ms, acknowledged, lost)
        )
    return rows


def main() -> None:
    args = flow_arguments(__doc__.splitlines()[0])
    print(f"{'':28} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'acked':>6} {'lost':>5}")
    for row in measure(args.events, args.rate, args.seconds):
        print(
            f"{row.name:28} {row.events_per_second:9.0f} {row.p50_ms:8.0f} {row.p99_ms:8.0f} "
            f"{row.acknowledged:6d} {row.lost:5d}"
        )


if __name__ == "__main__":
    main()
