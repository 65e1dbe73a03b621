"""Ingest: signed webhooks/s answered 2xx and durably stored, against the bare-FastAPI ceiling.

    python benchmarks/bench_ingest.py [--seconds 8] [--connections 16]

wrk (a C load generator, so the client costs little) sends pre-signed, distinct
webhooks to (1) a bare FastAPI/uvicorn endpoint that only reads the body, the
ceiling on this machine, and (2) `dodo-transform serve` with the shipped
transforms running, where each 2xx means the event is committed to SQLite.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    UvicornApp,
    ensure_wrk,
    running_service,
    signed_requests,
    write_wrk_script,
    wrk,
)

from dodo_transform.testing import SegmentStandIn, server_env


@dataclass(frozen=True)
class IngestResult:
    ours: float
    ceiling: float
    errors: int

    @property
    def ratio(self) -> float:
        return self.ours / self.ceiling


def measure(seconds: float = 8.0, connections: int = 16) -> IngestResult | None:
    if ensure_wrk() is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "requests.lua"
        # Enough distinct webhooks that none repeats within the run (a repeat is a dedupe hit).
        write_wrk_script(signed_requests(int(seconds * 3000), f"msg_wrk_{time.time_ns()}"), script)
        with SegmentStandIn("wk_bench").running() as standin:
            bare = UvicornApp(Path(tmp), server_env(standin), "bare_app").start()
            try:
                ceiling, _ = wrk(bare.url, script, seconds, connections)
            finally:
                bare.stop()
        with running_service() as (server, _):
            ours, errors = wrk(server.url, script, seconds, connections)
    return IngestResult(ours, ceiling, errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    result = measure(args.seconds, args.connections)
    if result is None:
        raise SystemExit("wrk is not installed and could not be installed")
    print(f"bare FastAPI ceiling: {result.ceiling:7.0f} requests/s")
    print(
        f"dodo-transform:       {result.ours:7.0f} signed webhooks/s stored "
        f"({result.ratio:.2f} of the ceiling, {result.errors} non-2xx)"
    )


if __name__ == "__main__":
    main()
