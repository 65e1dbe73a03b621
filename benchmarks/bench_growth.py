"""How the transform stage's cost grows: with the number of transforms, and with payload size.

    python benchmarks/bench_growth.py

Every event runs through every enabled transform, so the transform stage's
events/s should fall as 1/transforms; and every handler gets the whole parsed
body, so its cost should grow with the body's size. Both are measured in
process, on one thread, with the shipped `segment_track_payments.js` (copies
of it for more transforms) and a payment event grown to 2, 10 and 100 KB.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dodo_transform.transforms.engine import Transform
from dodo_transform.transforms.event import Event

ROOT = Path(__file__).resolve().parent.parent
SOURCE = (ROOT / "tests" / "fixtures" / "transforms" / "segment_track_payments.js").read_text()
BODY = json.loads((ROOT / "examples" / "events" / "payment.succeeded.json").read_text())


@dataclass(frozen=True)
class Growth:
    by_transforms: list[tuple[int, float]]  # (transforms, events/s)
    by_size: list[tuple[int, float]]  # (body bytes, us/event)


def padded(size: int) -> Event:
    """The payment event grown to about `size` bytes with many small metadata fields."""
    body = json.loads(json.dumps(BODY))
    metadata = body["data"]["metadata"]
    n = 0
    while len(json.dumps(body)) < size:
        metadata[f"field_{n:05d}"] = {"value": n, "label": f"item {n}"}
        n += 1
    return Event.from_body(json.dumps(body))


def runs_per_second(transforms: list[Transform], event: Event, events: int) -> float:
    """Events/s through all `transforms`, over one short burst of `events` events."""
    started = time.perf_counter()
    for _ in range(events):
        for transform in transforms:
            transform.run(event)
    return events / (time.perf_counter() - started)


def measure(rounds: int = 15) -> Growth:
    """Each configuration is timed in short bursts, interleaved with the others over `rounds`
    rounds, so that the machine's noise falls on all of them alike; medians are kept."""
    event = padded(2 * 1024)
    counts = (1, 3, 10, 30)
    sets = {
        count: [Transform(name=f"t{n}", source=SOURCE, filename=f"t{n}.js") for n in range(count)]
        for count in counts
    }
    track = Transform(name="track", source=SOURCE, filename="track.js")
    sizes = {size: padded(size) for size in (2 * 1024, 10 * 1024, 100 * 1024)}
    by_count: dict[int, list[float]] = {count: [] for count in counts}
    by_size: dict[int, list[float]] = {size: [] for size in sizes}
    for _ in range(rounds):
        for count, transforms in sets.items():
            by_count[count].append(runs_per_second(transforms, event, max(1, 300 // count)))
        for size, sized in sizes.items():
            by_size[size].append(1e6 / runs_per_second([track], sized, max(5, 300 * 1024 // size)))
    return Growth(
        [(count, statistics.median(rates)) for count, rates in by_count.items()],
        [(len(sizes[size].body), statistics.median(us)) for size, us in by_size.items()],
    )


def main() -> None:
    growth = measure()
    base = growth.by_transforms[0][1]
    print(f"{'transforms':>10} {'events/s':>10} {'x transforms':>13}")
    for count, rate in growth.by_transforms:
        print(f"{count:10d} {rate:10.0f} {rate * count / base:13.2f}")
    print(f"{'body bytes':>10} {'us/event':>10} {'us/KB':>8}")
    for size, us in growth.by_size:
        print(f"{size:10d} {us:10.1f} {us / (size / 1024):8.1f}")


if __name__ == "__main__":
    main()
