"""Engine speed: us/event for each seed handler against the bare-QuickJS floor and Node.js.

    python benchmarks/bench_engine.py [--rounds 40] [--events 250]

The floor is a bare QuickJS context that calls the same handler with a JSON
string in and a JSON string out: no isolation, no limits, no contract checks.
Ours is `Transform.run`, from the raw body to a typed `Outcome`. The machine
is shared and noisy, so the two are timed in alternating short rounds (of
`--events` events each) and the medians over the rounds are compared.
The fresh-runtime cost (a new QuickJS context with the source evaluated, per
event) is what isolation would cost done the naive way. The runtime cost is what
one of our runtimes costs to start (the prelude with its web platform, frozen,
and the handler compiled): paid once per transform version and thread, and
again only after a limit is hit. Node.js runs the same handler file
(`node_engine.js`, JSON string in and out, V8's JIT warm) as the reference a
user might otherwise pick.

"Sandboxed" is what the pipeline pays: the same runs sent to one sandbox
process (transforms/sandbox_processes.py) in rounds of the pipeline's size,
events crossing the pipe and outcomes coming back, the backstop watching.
Its cost over "ours" is the price of a time limit no built-in call escapes.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import quickjs

from dodo_transform.limits import Limits
from dodo_transform.pipeline.transform_stage import EVENTS_PER_ROUND
from dodo_transform.transforms.engine import Transform
from dodo_transform.transforms.event import Event
from dodo_transform.transforms.sandbox import Sandbox
from dodo_transform.transforms.sandbox_processes import SandboxPool

ROOT = Path(__file__).resolve().parent.parent
SEEDS = {
    "segment_track_payments": "payment.succeeded.json",
    "segment_subscription_lifecycle": "subscription.active.json",
    "segment_identify_customer": "payment.succeeded.json",
}


def floor_runner(source: str):  # type: ignore[no-untyped-def]
    context = quickjs.Context()
    context.eval(
        source + "\nfunction __floor(s) { return JSON.stringify(handler(JSON.parse(s))); }"
    )
    call = context.get("__floor")
    return call


def envelope(event: Event) -> str:
    return (
        '{"method":"POST","url":"","eventType":"'
        + event.event_type
        + '","payload":'
        + event.body
        + ',"cancel":false,"headers":{},"env":{}}'
    )


def per_event_us(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


@dataclass(frozen=True)
class EngineRow:
    handler: str
    ours_us: float
    floor_us: float
    node_us: float | None
    sandboxed_us: float

    @property
    def sandboxed_ratio(self) -> float:
        return self.sandboxed_us / self.floor_us

    @property
    def ratio(self) -> float:
        return self.ours_us / self.floor_us


def node_us(handler: Path, event: Path, rounds: int, events: int) -> float | None:
    """Node.js's median us/event for the same file, or None without node."""
    node = shutil.which("node")
    if node is None:
        return None
    script = Path(__file__).with_name("node_engine.js")
    done = subprocess.run(
        [node, str(script), str(handler), str(event), str(rounds), str(events)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return float(done.stdout.strip())


def sandboxed_us(pool: SandboxPool, transform: Transform, event: Event, n: int) -> float:
    """us/event through one sandbox process, in rounds of the pipeline's size."""
    pairs = [(transform, event)] * EVENTS_PER_ROUND
    rounds = max(1, n // EVENTS_PER_ROUND)
    start = time.perf_counter()
    for _ in range(rounds):
        pool.run_pairs(pairs)
    return (time.perf_counter() - start) / (rounds * EVENTS_PER_ROUND) * 1e6


def measure(rounds: int = 40, events: int = 250) -> tuple[list[EngineRow], float]:
    """(a row per seed handler, the fresh-runtime cost in us)."""
    pool = SandboxPool(1)
    try:
        return _measure(pool, rounds, events)
    finally:
        pool.close()


def _measure(pool: SandboxPool, rounds: int, events: int) -> tuple[list[EngineRow], float]:
    rows = []
    for name, event_file in SEEDS.items():
        path = ROOT / "tests" / "fixtures" / "transforms" / f"{name}.js"
        event_path = ROOT / "examples" / "events" / event_file
        source = path.read_text()
        event = Event.from_body(event_path.read_text())
        transform = Transform.from_file(path)
        floor = floor_runner(source)
        text = envelope(event)
        assert transform.run(event).kind == "deliver"
        assert pool.run_pairs([(transform, event)])[0].kind == "deliver"
        ours_runs, floor_runs, sandboxed_runs = [], [], []
        for _ in range(rounds):
            ours_runs.append(per_event_us(partial(transform.run, event), events))
            floor_runs.append(per_event_us(partial(floor, text), events))
            sandboxed_runs.append(sandboxed_us(pool, transform, event, events))
        rows.append(
            EngineRow(
                name,
                statistics.median(ours_runs),
                statistics.median(floor_runs),
                node_us(path, event_path, rounds, events * 4),
                statistics.median(sandboxed_runs),
            )
        )
    source = (ROOT / "tests" / "fixtures" / "transforms" / "segment_track_payments.js").read_text()
    text = envelope(
        Event.from_body((ROOT / "examples" / "events" / "payment.succeeded.json").read_text())
    )
    # The naive way to isolate events: a new context, the source evaluated, one call.
    fresh = statistics.median(
        per_event_us(lambda: floor_runner(source)(text), 100) for _ in range(5)
    )
    return rows, fresh


def runtime_us(rounds: int = 5, runtimes: int = 20) -> float:
    """CPU us to start one runtime of ours, median over rounds (the machine is shared)."""
    source = (ROOT / "tests" / "fixtures" / "transforms" / "segment_track_payments.js").read_text()

    def once() -> float:
        start = time.thread_time()
        for _ in range(runtimes):
            Sandbox(source, "bench.js", Limits())
        return (time.thread_time() - start) / runtimes * 1e6

    return statistics.median(once() for _ in range(rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--events", type=int, default=250)
    args = parser.parse_args()
    rows, fresh = measure(args.rounds, args.events)
    print(
        f"{'handler':34} {'ours us':>9} {'floor us':>9} {'ratio':>6} {'events/s':>9} {'node us':>8}"
        f" {'sandboxed us':>12} {'ratio':>6}"
    )
    for row in rows:
        node = f"{row.node_us:8.2f}" if row.node_us is not None else "     n/a"
        print(
            f"{row.handler:34} {row.ours_us:9.1f} {row.floor_us:9.1f} {row.ratio:5.2f}x "
            f"{1e6 / row.ours_us:9.0f} {node} {row.sandboxed_us:12.1f} {row.sandboxed_ratio:5.2f}x"
        )
    print(f"fresh runtime per event (new context, source evaluated, one call): {fresh:.1f} us")
    print(
        f"one of our runtimes (prelude, web platform, freeze, handler; CPU): {runtime_us():.0f} us"
    )


if __name__ == "__main__":
    main()
