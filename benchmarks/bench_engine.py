"""Engine speed: us/event for each seed handler against the bare-QuickJS floor.

    python benchmarks/bench_engine.py [--rounds 40] [--events 250]

The floor is a bare QuickJS context that calls the same handler with a JSON
string in and a JSON string out: no isolation, no limits, no contract checks.
Ours is `Transform.run`, from the raw body to a typed `Outcome`. The machine
is shared and noisy, so the two are timed in alternating short rounds (of
`--events` events each) and the medians over the rounds are compared.
The fresh-runtime cost (new context + prelude + source, per event) is what
isolation would cost done the naive way.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial
from pathlib import Path

import quickjs

from dodo_transform.engine import Event, Transform

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--events", type=int, default=250)
    args = parser.parse_args()
    print(f"{'handler':34} {'ours us':>9} {'floor us':>9} {'ratio':>6} {'events/s':>9}")
    for name, event_file in SEEDS.items():
        path = ROOT / "transforms" / f"{name}.js"
        source = path.read_text()
        event = Event.from_body((ROOT / "examples" / "events" / event_file).read_text())
        transform = Transform.from_file(path)
        floor = floor_runner(source)
        text = envelope(event)
        assert transform.run(event).kind == "deliver"
        ours_runs, floor_runs = [], []
        for _ in range(args.rounds):
            ours_runs.append(per_event_us(partial(transform.run, event), args.events))
            floor_runs.append(per_event_us(partial(floor, text), args.events))
        ours, bare = statistics.median(ours_runs), statistics.median(floor_runs)
        print(f"{name:34} {ours:9.1f} {bare:9.1f} {ours / bare:5.2f}x {1e6 / ours:9.0f}")
    source = (ROOT / "transforms" / "segment_track_payments.js").read_text()
    event = Event.from_body((ROOT / "examples" / "events" / "payment.succeeded.json").read_text())
    fresh = statistics.median(
        per_event_us(
            lambda: Transform(name="fresh", source=source, filename="fresh.js").run(event), 50
        )
        for _ in range(5)
    )
    print(f"fresh runtime per event (new context, prelude, compile, run): {fresh:.1f} us")


if __name__ == "__main__":
    main()
