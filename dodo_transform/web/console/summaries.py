"""What the overview and the transforms page show, computed from the registry and the
recent window of the store (see `reading.py`). Blocking: call these in a thread."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from dodo_transform.outgoing.destination import PausedDestination
from dodo_transform.store import Delivery, DeliveryStatus
from dodo_transform.web.console import charts, files, reading
from dodo_transform.web.context import WebContext

DAY = 86400.0
HOUR = 3600.0
# How the pipeline words an outcome it did not run because the version is quarantined: the
# transform stage's error starts with the first, the sandbox processes' (within one batch)
# holds the second after the transform's name.
QUARANTINE_START = "quarantined:"
QUARANTINE_MARK = ": not run: this version hit its resource limit"
QUARANTINE_LOOKBACK = 20


@dataclass(frozen=True)
class TransformRow:
    name: str
    state: str  # live, broken, quarantined or disabled
    version: str | None
    error: str | None
    counts: dict[str, int] = field(default_factory=dict)
    last_at: float | None = None


def transform_rows(context: WebContext, recent: list[Delivery]) -> list[TransformRow]:
    """Every transform in the folder or in service, with its state and its last day's counts."""
    registry = context.registry
    current, errors = registry.current(), registry.errors
    names = sorted(set(files.names(registry.directory)) | current.keys() | errors.keys())
    rows = []
    for name in names:
        if not files.valid_name(name):
            continue  # a transforms.toml error is not a transform; the overview shows it
        version = current[name].version if name in current else None
        mine = [d for d in recent if d.transform == name]
        rows.append(
            TransformRow(
                name=name,
                state=_state(context, name, version, errors.get(name), mine),
                version=version,
                error=errors.get(name) or _quarantine(mine, version),
                counts=dict(Counter(d.status.value for d in mine)),
                last_at=max((d.created_at for d in mine), default=None),
            )
        )
    return rows


def _state(
    context: WebContext, name: str, version: str | None, error: str | None, mine: list[Delivery]
) -> str:
    if error:
        return "broken"
    if not context.registry.settings(name).enabled:
        return "disabled"
    if _quarantine(mine, version):
        return "quarantined"
    return "live"


def _quarantine(mine: list[Delivery], version: str | None) -> str | None:
    """The quarantine error of the version in service, if one of its newest outcomes is one.

    Not only the very newest: one batch of events may be stored in any order. Quarantine
    lasts until the file changes (or the worker restarts), so a recent mark still holds."""
    newest = [d for d in mine if d.version == version][:QUARANTINE_LOOKBACK]
    return next((d.error for d in newest if _quarantined(d.error)), None)


def _quarantined(error: str | None) -> bool:
    if error is None:
        return False
    return error.startswith(QUARANTINE_START) or QUARANTINE_MARK in error


@dataclass(frozen=True)
class Overview:
    events_hour: int
    events_day: int
    events_chart: charts.Chart
    hour_chart: charts.Chart
    day_chart: charts.Chart
    dead: int
    failed: int
    troubled: list[TransformRow]
    config_error: str | None
    capped: bool
    paused: list[PausedDestination]


def overview(context: WebContext) -> Overview:
    now = time.time()
    deliveries = reading.recent_deliveries(context.store, now - DAY)
    events = reading.recent_events(context.store, now - DAY)
    counts = context.store.counts()
    hour = [d.status for d in deliveries if d.created_at >= now - HOUR]
    rows = transform_rows(context, deliveries)
    return Overview(
        events_hour=sum(e.received_at >= now - HOUR for e in events),
        events_day=len(events),
        events_chart=charts.over_time(
            [e.received_at for e in events], now, DAY, 24, "events per hour, last 24 h"
        ),
        hour_chart=charts.by_status(hour, "deliveries by status, last hour"),
        day_chart=charts.by_status([d.status for d in deliveries], "deliveries, last 24 h"),
        dead=counts.get(DeliveryStatus.DEAD, 0),
        failed=counts.get(DeliveryStatus.FAILED, 0),
        troubled=[row for row in rows if row.state in ("broken", "quarantined")],
        config_error=context.registry.settings_error,
        capped=max(len(deliveries), len(events)) >= reading.WINDOW_LIMIT,
        paused=context.paused(),
    )
