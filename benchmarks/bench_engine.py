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
Its cost over "ours" is the price of a time limit no built-in call escapes;
`test` and `check` pay it too since they run in a sandbox process.

The script-mode and async costs, each beside its reference in the same rounds:
- every event: the scan that restores the global (`Reflect.ownKeys` of it,
  __dodo_restoreGlobal's check) and the empty job queue run after the handler
  (`_drain`), against the whole event;
- a sloppy handler that assigns an undeclared global and a globalThis counter
  (both deleted before the next event) against the same handler with `let`;
- the seed handler made `async` (one promise, its jobs run, settle()) and with
  one `await` more, against the seed handler as it is.
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
from dodo_transform.transforms.sandbox import Sandbox, _Clock, _drain
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


SEED = ROOT / "transforms" / "segment_track_payments.js"
SLOPPY_GLOBALS = """function handler(webhook) {
  total = webhook.payload.data.total_amount;
  globalThis.counter = (globalThis.counter || 0) + 1;
  webhook.url = "https://api.segment.io/v1/track";
  webhook.payload = {userId: "u", event: "Payment Completed",
    properties: {total: total, counter: globalThis.counter}};
  return webhook;
}
"""
DECLARED = (
    SLOPPY_GLOBALS.replace("  total =", "  let total =")
    .replace("globalThis.counter = (globalThis.counter || 0) + 1", "let counter = 1")
    .replace("globalThis.counter}", "counter}")
)


@dataclass(frozen=True)
class ScriptCosts:
    """us per event: each figure beside the reference it is a part of or compared with."""

    event: float  # the seed handler's whole event (the reference for the next two)
    restore_scan: float
    empty_drain: float
    declared: float
    sloppy_globals: float
    seed: float
    seed_async: float
    seed_await: float


def script_costs(rounds: int = 20, events: int = 250) -> ScriptCosts:
    """Medians over alternating rounds (see the module's docstring)."""
    event = Event.from_body((ROOT / "examples" / "events" / "payment.succeeded.json").read_text())
    seed = SEED.read_text()
    transforms = {
        "declared": DECLARED,
        "sloppy_globals": SLOPPY_GLOBALS,
        "seed": seed,
        "seed_async": seed.replace("function handler", "async function handler"),
        "seed_await": seed.replace("function handler", "async function handler").replace(
            "return webhook;\n}", "await null;\n  return webhook;\n}"
        ),
    }
    runs = {name: Transform(name=name, source=source, filename=f"{name}.js")
            for name, source in transforms.items()}  # fmt: skip
    for name, transform in runs.items():
        assert transform.run(event).kind == "deliver", name
    context = runs["seed"]._sandbox()._context
    scan = context.eval(
        "(function () { const g = globalThis; return () => Reflect.ownKeys(g); })()"
    )
    call = context.eval("(function () { return () => 0; })()")
    timed: dict[str, list[float]] = {name: [] for name in [*runs, "scan", "call", "drain"]}
    for _ in range(rounds):
        for name, transform in runs.items():
            timed[name].append(per_event_us(partial(transform.run, event), events))
        timed["scan"].append(per_event_us(scan, events))
        timed["call"].append(per_event_us(call, events))
        clock = _Clock(1.0, 1.0)
        timed["drain"].append(per_event_us(partial(_drain, context, clock), events))
    median = {name: statistics.median(values) for name, values in timed.items()}
    return ScriptCosts(
        event=median["seed"],
        restore_scan=median["scan"] - median["call"],  # the scan, not the call into JS
        empty_drain=median["drain"],
        **{name: median[name] for name in transforms},
    )


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
    costs = script_costs(max(5, args.rounds // 2), args.events)
    print(
        f"every event: restore scan {costs.restore_scan:.1f} us + empty job queue "
        f"{costs.empty_drain:.1f} us, of a whole event of {costs.event:.1f} us"
    )
    print(
        f"sloppy globals (deleted after the event): {costs.sloppy_globals:.1f} us "
        f"vs the same with let: {costs.declared:.1f} us "
        f"(+{costs.sloppy_globals - costs.declared:.1f} us)"
    )
    print(
        f"async: {costs.seed_async:.1f} us, with one await more {costs.seed_await:.1f} us, "
        f"vs the seed handler sync: {costs.seed:.1f} us "
        f"(+{costs.seed_async - costs.seed:.1f} / +{costs.seed_await - costs.seed:.1f} us)"
    )


if __name__ == "__main__":
    main()
