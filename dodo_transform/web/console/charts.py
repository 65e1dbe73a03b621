"""Small charts drawn on the server: the geometry of SVG bars, which the templates draw.

No chart library and no script: a chart is a list of rectangles with a title
each (the browser shows it on hover), so the overview works with scripts off.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dodo_transform.store import DeliveryStatus

WIDTH = 480
HEIGHT = 80
BAR_HEIGHT = 16
LABEL_WIDTH = 90


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    label: str
    css: str = ""


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    title: str
    axis: tuple[str, str] | None = None  # what the left and right ends stand for


def over_time(times: Iterable[float], now: float, span: float, buckets: int, title: str) -> Chart:
    """How many of `times` fall in each of `buckets` equal slices of the `span` before `now`
    (oldest on the left)."""
    size = span / buckets
    counts = Counter(int((now - t) // size) for t in times if 0 <= now - t < span)
    peak = max(counts.values(), default=0) or 1
    step = WIDTH / buckets
    bars = []
    for slot in range(buckets):
        count = counts.get(buckets - 1 - slot, 0)
        height = (HEIGHT - 2) * count / peak
        ago = (buckets - slot) * size
        bars.append(
            Bar(slot * step + 1, HEIGHT - height, step - 2, height, count, f"{_ago(ago)}: {count}")
        )
    return Chart(WIDTH, HEIGHT, bars, title, (_ago(span), "now"))


def by_status(statuses: Sequence[DeliveryStatus], title: str) -> Chart:
    """One horizontal bar per status present, longest for the most common."""
    counts = Counter(statuses)
    peak = max(counts.values(), default=0) or 1
    bars = [
        Bar(
            LABEL_WIDTH,
            row * (BAR_HEIGHT + 4),
            max((WIDTH - LABEL_WIDTH - 50) * count / peak, 1),
            BAR_HEIGHT,
            count,
            status.value,
            f"status-{status.value}",
        )
        for row, (status, count) in enumerate(
            sorted(counts.items(), key=lambda item: (-item[1], item[0].value))
        )
    ]
    return Chart(WIDTH, max(len(bars), 1) * (BAR_HEIGHT + 4), bars, title)


def _ago(seconds: float) -> str:
    if seconds <= 3600:
        return f"{round(seconds / 60)} min ago"
    return f"{round(seconds / 3600)} h ago"
