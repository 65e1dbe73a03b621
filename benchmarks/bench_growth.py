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

from dodo_transform.engine import Event, Transform

ROOT = Path(__file__).resolve().parent.parent
SOURCE = (ROOT / "transforms" / "segment_track_payments.js").read_text()
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


def events_per_second(transforms: list[Transform], event: Event, seconds: float) -> float:
    runs = []
    for _ in range(5):
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds / 5:
            for transform in transforms:
                transform.run(event)
            count += 1
        runs.append(count / (time.perf_counter() - started))
    return statistics.median(runs)


def measure(seconds: float = 2.0) -> Growth:
    event = padded(2 * 1024)
    by_transforms = []
    for count in (1, 3, 10, 30):
        transforms = [
            Transform(name=f"t{n}", source=SOURCE, filename=f"t{n}.js") for n in range(count)
        ]
        by_transforms.append((count, events_per_second(transforms, event, seconds)))
    track = Transform(name="track", source=SOURCE, filename="track.js")
    by_size = []
    for size in (2 * 1024, 10 * 1024, 100 * 1024):
        sized = padded(size)
        by_size.append((len(sized.body), 1e6 / events_per_second([track], sized, seconds)))
    return Growth(by_transforms, by_size)


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
