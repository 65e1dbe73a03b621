"""Where an ingest request's CPU goes, by switching parts of it off, in one process.

    python benchmarks/profile_ingest.py [--requests 1000] [--rounds 5]

The app is driven in process through httpx's ASGI transport with 16 concurrent
senders (so group commits form as under load), and CPU time per request is
compared: the bare endpoint, the full ingest path, without its log line, without
the store as well, and without the signature check and body parse too (the route
reading the headers and body and answering). The client's own cost is in every
figure alike, so the differences are what each part costs. CPU only: the time a
request waits for its group's commit (the fsync) is not in these figures.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import httpx._transports.asgi as asgi_transport

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bare_app
from harness import signed_requests

from dodo_transform import logs
from dodo_transform.service import build_service
from dodo_transform.settings import load_settings
from dodo_transform.store.sqlite import NewEvent
from dodo_transform.testing import SECRET
from dodo_transform.web import ingest

# The test transport probes for trio by importing it on every request; that probe is not ours.
asgi_transport.is_running_trio = lambda: False  # type: ignore[attr-defined]


@dataclass(frozen=True)
class IngestProfile:
    bare_us: float
    full_us: float
    no_log_us: float
    no_log_no_store_us: float
    route_only_us: float


async def cpu_per_request(app: object, count: int, tag: str) -> float:
    requests = signed_requests(count, f"msg_{tag}_{time.time_ns()}")
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://relay") as client:

        async def sender() -> None:
            while requests:
                body, headers = requests.pop()
                await client.post("/webhooks/dodo", content=body, headers=headers)

        started = time.process_time()
        await asyncio.gather(*(sender() for _ in range(16)))
        return (time.process_time() - started) / count * 1e6


async def measure_async(count: int, rounds: int) -> IngestProfile:
    """Medians over `rounds` rounds, each running every configuration in turn."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "transforms").mkdir()
        settings = load_settings(
            transforms=Path(tmp) / "transforms", data_dir=Path(tmp) / "data", webhook_secret=SECRET
        )
        service = build_service(settings)
        assert service.intake is not None and service.verifier is not None
        stored, verify, event_type = service.intake.add, service.verifier.verify, ingest.event_type
        listener = logs.setup(log_format="json")  # as the service logs under systemd

        async def not_stored(event: NewEvent) -> tuple[int, bool]:
            return 1, True

        def configure(log: bool, store: bool, check: bool) -> None:
            assert service.intake is not None and service.verifier is not None
            logging.getLogger().setLevel(logging.INFO if log else logging.WARNING)
            service.intake.add = stored if store else not_stored  # type: ignore[method-assign]
            service.verifier.verify = (  # type: ignore[method-assign]
                verify if check else lambda body, headers: headers["webhook-id"]
            )
            ingest.event_type = event_type if check else lambda body: "payment.succeeded"

        samples: dict[str, list[float]] = {
            "bare": [],
            "full": [],
            "nolog": [],
            "neither": [],
            "route": [],
        }
        try:
            for round_ in range(rounds):
                samples["bare"].append(await cpu_per_request(bare_app.app, count, f"b{round_}"))
                for name, log, store, check in (
                    ("full", True, True, True),
                    ("nolog", False, True, True),
                    ("neither", False, False, True),
                    ("route", False, False, False),
                ):
                    configure(log, store, check)
                    samples[name].append(
                        await cpu_per_request(service.app, count, f"{name}{round_}")
                    )
        finally:
            configure(True, True, True)
            listener.stop()
            service.intake.close()
            service.store.close()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return IngestProfile(
        medians["bare"], medians["full"], medians["nolog"], medians["neither"], medians["route"]
    )


def measure(count: int = 1000, rounds: int = 5) -> IngestProfile:
    return asyncio.run(measure_async(count, rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="per configuration and round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    profile = measure(args.requests, args.rounds)
    print(f"bare endpoint:                  {profile.bare_us:6.0f} us CPU per request")
    print(f"dodo-transform ingest:          {profile.full_us:6.0f}")
    print(f"  without its log line:         {profile.no_log_us:6.0f}")
    print(f"  without log line and store:   {profile.no_log_no_store_us:6.0f}")
    print(f"  ... and without signature and parse: {profile.route_only_us:6.0f}")


if __name__ == "__main__":
    main()
